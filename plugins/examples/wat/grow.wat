;; grow: grows its memory one page at a time until memory.grow fails, then
;; traps, as an allocator that ran out would.
(module
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (block $full
      (loop $more
        (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
        (br $more)))
    unreachable))
