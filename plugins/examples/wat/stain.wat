;; stain: proves that a reset instance starts each call clean. Unlike
;; marker, it never grows its memory, so the host resets and reuses its
;; instance instead of discarding it. It checks that a byte of its data
;; segment, a word of its zeroed memory and its mutable globals hold their
;; initial values, then changes all of them. Output {"clean":true} or
;; {"clean":false}.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (global $g (mut i64) (i64.const 7))
  (global $h (mut i32) (i32.const -3))
  (data (i32.const 0) "{\22clean\22:true} ")
  (data (i32.const 32) "{\22clean\22:false}")
  (data (i32.const 100) "\2a")
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
    (local $clean i32)
    (local.set $clean
      (i32.and
        (i32.and
          (i32.and (i64.eqz (i64.load (i32.const 40000))) (i64.eq (global.get $g) (i64.const 7)))
          (i32.eq (global.get $h) (i32.const -3)))
        (i32.eq (i32.load8_u (i32.const 100)) (i32.const 42))))
    ;; leave stains behind
    (i64.store (i32.const 40000) (i64.const 0xABABABABABABABAB))
    (i32.store8 (i32.const 100) (i32.const 0))
    (global.set $g (i64.const 42))
    (global.set $h (i32.const 42))
    (if (local.get $clean)
      (then (call $emit (i32.const 0) (i32.const 14)))
      (else (call $emit (i32.const 32) (i32.const 15))))
    (i32.const 0)))
