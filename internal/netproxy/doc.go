// Package netproxy is a TCP proxy on 127.0.0.1 that cuts connections on
// command, for tests of what a client does when the network fails in the
// middle of a transfer: an upload cut after its first bytes, a download
// cut halfway, a response lost after the server acted on the request.
//
// # Use
//
// Start a proxy in front of a server, point the client at the proxy, and
// arm a cut:
//
//	p, err := netproxy.New(serverHostPort)
//	defer p.Close()
//	client := s3Client(p.Endpoint()) // http://127.0.0.1:PORT
//	p.Cut(netproxy.Up, 256<<10, 1)   // reset the connection carrying the 256 KiB+1st byte up, once
//	// ... the client uploads: its connection is reset mid-body ...
//	p.Heal()                         // connections carry everything again
//	if p.Cuts() == 0 { ... }         // check the cut happened: a test whose fault never fired proves nothing
//
// Up is the direction from client to server (request bodies, uploads),
// Down from server to client (response bodies, downloads). A cut resets
// both sides of the connection with an RST, as a dropped link looks to
// its peers, after passing exactly the bytes before it. Bytes are counted
// from when the rule was armed, across connections; after a cut the
// count starts again, for as many cuts as the rule allows.
package netproxy
