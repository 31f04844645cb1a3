;; badptr: calls ctx_get with an offset past 32-bit memory (1<<40, which a
;; careless host would truncate to 0).
(module
  (import "12fa:v1" "ctx_get" (func $ctx_get (param i64) (result i64)))
  (func (export "run") (result i32)
    (drop (call $ctx_get (i64.const 1099511627776)))
    (i32.const 0)))
