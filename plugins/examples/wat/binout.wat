;; binout: outputs four bytes that are not UTF-8 (ff fe 00 01), as a plugin
;; returning an image or a compressed file would.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (func (export "run") (result i32) (local $o i64)
    (local.set $o (call $alloc (i64.const 4)))
    (call $store64 (local.get $o) (i64.const 0x0100feff))
    (call $output_set (local.get $o) (i64.const 4))
    (i32.const 0)))
