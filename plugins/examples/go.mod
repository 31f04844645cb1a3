module github.com/12fa/12fa/plugins/examples

go 1.26.8

require github.com/12fa/12fa/pdk/go v0.0.0

require github.com/12fa/12fa v0.0.0 // indirect

replace (
	github.com/12fa/12fa => ../..
	github.com/12fa/12fa/pdk/go => ../../pdk/go
)
