module github.com/tokenhandler/tokenhandler

go 1.26.8

require (
	github.com/minio/sio v0.4.1
	golang.org/x/crypto v0.59.0
)

require golang.org/x/sys v0.50.0 // indirect
