;; loop: never returns. The host must stop it at its timeout.
(module
  (func (export "run") (result i32)
    (loop $forever (br $forever))
    (i32.const 0)))
