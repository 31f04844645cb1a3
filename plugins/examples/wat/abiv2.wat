;; abiv2: imports from a future ABI namespace; the host must refuse it by name.
(module
  (import "12fa:v2" "log" (func $log (param i32 i64) (result i32)))
  (func (export "run") (result i32)
    (i32.const 0)))
