module github.com/12fa/12fa/pdk/go

go 1.26.8

require github.com/12fa/12fa v0.0.0

replace github.com/12fa/12fa => ../..
