;; tableset: a plugin whose code changes its table (table.set), which a
;; reset of memory and globals would not undo. The host must give each of
;; its calls a fresh instance. run swaps the function its table calls
;; through and reports which one it found: {"first":true} in a fresh
;; instance.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (table $t 1 funcref)
  (type $pick (func (result i32)))
  (func $first (result i32) (i32.const 0))
  (func $second (result i32) (i32.const 32))
  (elem (table $t) (i32.const 0) func $first)
  (elem declare func $second)
  (data (i32.const 0) "{\22first\22:true} ")
  (data (i32.const 32) "{\22first\22:false}")
  (func $emit (param $src i32) (param $n i32)
    (local $off i64) (local $i i32)
    (local.set $off (call $alloc (i64.extend_i32_u (local.get $n))))
    (block $done
      (loop $copy
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $store_u8 (i64.add (local.get $off) (i64.extend_i32_u (local.get $i)))
                        (i32.load8_u (i32.add (local.get $src) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $copy)))
    (call $output_set (local.get $off) (i64.extend_i32_u (local.get $n))))
  (func (export "run") (result i32)
    (local $src i32)
    (local.set $src (call_indirect $t (type $pick) (i32.const 0)))
    (table.set $t (i32.const 0) (ref.func $second))
    (call $emit (local.get $src) (i32.add (i32.const 14) (i32.div_u (local.get $src) (i32.const 32))))
    (i32.const 0)))
