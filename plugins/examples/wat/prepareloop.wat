;; prepareloop: a plugin whose 12fa_prepare export never returns. The host
;; must bound the prepare call (part of an instance's start-up) with the call's timeout;
;; run itself is a no-op that succeeds.
(module
  (func (export "12fa_prepare") (result i32)
    (loop $forever (br $forever))
    (i32.const 0))
  (func (export "run") (result i32)
    (i32.const 0)))
