;; allocfail: asks the kernel for more memory than any cap allows (alloc
;; returns 0), then ends its call another way. Exports:
;;   loop     loops forever (the cause must be the timeout)
;;   badcall  calls ctx_set(0, 0) (the cause must be the bad host call)
;;   trap     traps (a memory limit: the refused allocation explains it)
;;   tiny     calls alloc(0) until refused; outputs nothing
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "12fa:v1" "ctx_set" (func $ctx_set (param i64 i64) (result i32)))
  (func $refused (drop (call $alloc (i64.const 0x7fffffffffff))))
  (func (export "loop") (result i32)
    (call $refused)
    (loop $l (br $l))
    (i32.const 0))
  (func (export "badcall") (result i32)
    (call $refused)
    (drop (call $ctx_set (i64.const 0) (i64.const 0)))
    (i32.const 0))
  (func (export "trap") (result i32)
    (call $refused)
    unreachable)
  (func (export "tiny") (result i32)
    (block $done (loop $l
      (br_if $done (i64.eqz (call $alloc (i64.const 0))))
      (br $l)))
    (i32.const 0)))
