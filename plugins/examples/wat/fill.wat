;; fill is a test fixture that writes the largest values 12fa's limits
;; allow, made of the character that JSON encoders escape the most ('<'):
;; it sets context keys (the prefix from config "p", default "a", then
;; A, B, …) to the same 1 MiB JSON string until the host says "limited",
;; then outputs a JSON string of '<'. Exports:
;;   run  output of 4 MiB (the default max_output)
;;   big  output of 32 MiB (the largest max_output)
;;   ctx  outputs the number of keys it could set, as two digits
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store64 (param i64 i64)))
  (import "extism:host/env" "store_u8" (func $store8 (param i64 i32)))
  (import "extism:host/env" "load_u8" (func $load8 (param i64) (result i32)))
  (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "12fa:v1" "ctx_set" (func $ctx_set (param i64 i64) (result i32)))

  ;; a block holding a JSON string of n bytes: '"', n-2 times '<', '"'
  (func $str (param $n i64) (result i64)
    (local $off i64) (local $i i64)
    (local.set $off (call $alloc (local.get $n)))
    (block $done (loop $fill
      (br_if $done (i64.gt_u (i64.add (local.get $i) (i64.const 8)) (local.get $n)))
      (call $store64 (i64.add (local.get $off) (local.get $i)) (i64.const 0x3c3c3c3c3c3c3c3c))
      (local.set $i (i64.add (local.get $i) (i64.const 8)))
      (br $fill)))
    (block $done (loop $tail
      (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
      (call $store8 (i64.add (local.get $off) (local.get $i)) (i32.const 0x3c))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br $tail)))
    (call $store8 (local.get $off) (i32.const 0x22))
    (call $store8 (i64.add (local.get $off) (i64.sub (local.get $n) (i64.const 1))) (i32.const 0x22))
    (local.get $off))

  ;; the key-prefix byte: config "p", or 'a'
  (func $prefix (result i32) (local $k i64) (local $v i64)
    (local.set $k (call $alloc (i64.const 1)))
    (call $store8 (local.get $k) (i32.const 0x70))
    (local.set $v (call $config_get (local.get $k)))
    (if (result i32) (i64.eqz (local.get $v))
      (then (i32.const 0x61))
      (else (call $load8 (local.get $v)))))

  ;; sets keys <prefix>A, <prefix>B, … (at most 26) to 1 MiB strings until
  ;; refused; returns how many it set
  (func $setall (result i32) (local $c i32) (local $p i32) (local $v i64) (local $key i64)
    (local.set $p (call $prefix))
    (local.set $v (call $str (i64.const 1048576)))
    (block $done (loop $next
      (local.set $key (call $alloc (i64.const 2)))
      (call $store8 (local.get $key) (local.get $p))
      (call $store8 (i64.add (local.get $key) (i64.const 1)) (i32.add (i32.const 0x41) (local.get $c)))
      (br_if $done (i32.ne (call $ctx_set (local.get $key) (local.get $v)) (i32.const 0)))
      (local.set $c (i32.add (local.get $c) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $c) (i32.const 26)))))
    (local.get $c))

  (func $fill (param $out i64) (result i32)
    (drop (call $setall))
    (call $output_set (call $str (local.get $out)) (local.get $out))
    (i32.const 0))

  (func (export "run") (result i32) (call $fill (i64.const 4194304)))
  (func (export "big") (result i32) (call $fill (i64.const 33554432)))
  (func (export "ctx") (result i32) (local $c i32) (local $o i64)
    (local.set $c (call $setall))
    (local.set $o (call $alloc (i64.const 2)))
    (call $store8 (local.get $o) (i32.add (i32.const 0x30) (i32.div_u (local.get $c) (i32.const 10))))
    (call $store8 (i64.add (local.get $o) (i64.const 1)) (i32.add (i32.const 0x30) (i32.rem_u (local.get $c) (i32.const 10))))
    (call $output_set (local.get $o) (i64.const 2))
    (i32.const 0))
)
