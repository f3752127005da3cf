// S3 keeps a bucketsqlite database in AWS S3, Cloudflare R2 or any
// S3-compatible server. Each run adds a row, lists the rows, flushes
// explicitly and closes.
//
// Credentials come from the standard AWS configuration chain, never from
// flags or the DSN: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and
// AWS_SESSION_TOKEN), or AWS_PROFILE and the shared config files, or an
// instance or web-identity role. The region comes from -region, else
// AWS_REGION or the profile. The endpoint of an S3-compatible service
// comes from -endpoint, else AWS_ENDPOINT_URL_S3.
//
//	# AWS S3
//	AWS_REGION=eu-west-1 go run ./examples/s3 -bucket my-bucket
//
//	# Cloudflare R2 (an R2 API token's access key and secret)
//	AWS_ENDPOINT_URL_S3=https://ACCOUNT_ID.r2.cloudflarestorage.com AWS_REGION=auto \
//		go run ./examples/s3 -bucket my-bucket
//
//	# a local S3-compatible server, such as versitygw
//	go run ./examples/s3 -bucket demo -endpoint http://127.0.0.1:7070 -path-style
//
//	# or everything but the credentials as one DSN
//	go run ./examples/s3 -dsn 's3://demo/examples/s3.db?endpoint=http://127.0.0.1:7070&path_style=true'
package main
