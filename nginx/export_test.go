package nginx

// What the black-box tests of package nginx_test use of the package's
// internals and of its white-box tests.
var (
	HeadersBucketSize = headersBucketSize
	ExampleParams     = exampleParams
)
