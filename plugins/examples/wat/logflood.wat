;; logflood: logs one line 100,000 times.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "12fa:v1" "log" (func $log (param i32 i64) (result i32)))
  (func (export "run") (result i32)
    (local $i i32) (local $off i64)
    (local.set $off (call $alloc (i64.const 1)))
    (call $store_u8 (local.get $off) (i32.const 120))
    (block $done
      (loop $more
        (br_if $done (i32.ge_u (local.get $i) (i32.const 100000)))
        (drop (call $log (i32.const 2) (local.get $off)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $more)))
    (i32.const 0)))
