;; logloop: logs "started", then never returns. Tests use the log line to
;; know the call is running, and its timeout to end it.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "12fa:v1" "log" (func $log (param i32 i64) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "started")
  (func (export "run") (result i32)
    (local $off i64) (local $i i32)
    (local.set $off (call $alloc (i64.const 7)))
    (block $done
      (loop $copy
        (br_if $done (i32.ge_u (local.get $i) (i32.const 7)))
        (call $store_u8 (i64.add (local.get $off) (i64.extend_i32_u (local.get $i)))
                        (i32.load8_u (local.get $i)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $copy)))
    (drop (call $log (i32.const 2) (local.get $off)))
    (loop $forever (br $forever))
    (i32.const 0)))
