package bucket

// SidecarPath exposes, to the external tests, where Dir keeps the ETag and
// metadata of the object file at path.
func SidecarPath(path string) string { return sidecarPath(path) }
