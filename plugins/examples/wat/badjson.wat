;; badjson: calls ctx_set with a value that is not JSON.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "12fa:v1" "ctx_set" (func $ctx_set (param i64 i64) (result i32)))
  (func $byte (param $c i32) (result i64)
    (local $off i64)
    (local.set $off (call $alloc (i64.const 1)))
    (call $store_u8 (local.get $off) (local.get $c))
    (local.get $off))
  (func (export "run") (result i32)
    ;; key "k", value "{" (not JSON)
    (drop (call $ctx_set (call $byte (i32.const 107)) (call $byte (i32.const 123))))
    (i32.const 0)))
