;; marker: proves isolation between calls. It checks that its memory and
;; its mutable global are at their initial values (a marker at byte 4096 is
;; zero, the memory is one page, the global is 0), then leaves markers
;; behind: writes 0xAB.. at 4096, grows the memory by a page and writes there
;; too, sets the global to 42. Output {"clean":true} or {"clean":false}.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (global $g (mut i64) (i64.const 0))
  (data (i32.const 0) "{\22clean\22:true} ")
  (data (i32.const 32) "{\22clean\22:false}")
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
        (i32.and (i64.eqz (i64.load (i32.const 4096))) (i64.eqz (global.get $g)))
        (i32.eq (memory.size) (i32.const 1))))
    ;; leave markers behind
    (i64.store (i32.const 4096) (i64.const 0xABABABABABABABAB))
    (global.set $g (i64.const 42))
    (drop (memory.grow (i32.const 1)))
    (i64.store (i32.const 65544) (i64.const 0xABABABABABABABAB))
    (if (local.get $clean)
      (then (call $emit (i32.const 0) (i32.const 14)))
      (else (call $emit (i32.const 32) (i32.const 15))))
    (i32.const 0)))
