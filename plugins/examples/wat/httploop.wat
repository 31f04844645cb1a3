;; httploop: sends the step's raw input (input_mode = "raw"), an HTTP
;; request document, through 12fa's http 100 times, and outputs the last
;; response document. It measures the host's side of a call (bench), with
;; as little guest work as a call can have.
(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "free" (func $free (param i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "12fa:v1" "http" (func $http (param i64) (result i64)))
  (func (export "run") (result i32)
    (local $n i64) (local $i i64) (local $req i64) (local $resp i64) (local $k i32)
    (local.set $n (call $input_length))
    (local.set $req (call $alloc (local.get $n)))
    (block $copied
      (loop $copy
        (br_if $copied (i64.ge_u (local.get $i) (local.get $n)))
        (call $store_u8 (i64.add (local.get $req) (local.get $i)) (call $input_load_u8 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $copy)))
    (block $done
      (loop $calls
        (br_if $done (i32.ge_u (local.get $k) (i32.const 100)))
        (if (i64.ne (local.get $resp) (i64.const 0)) (then (call $free (local.get $resp))))
        (local.set $resp (call $http (local.get $req)))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $calls)))
    (call $output_set (local.get $resp) (call $length (local.get $resp)))
    (i32.const 0)))
