//! Undo in reverse on failure: each side effect of an ADD registers how to undo it; if the ADD
//! does not reach [`Rollback::commit`] (an error returned with `?`, or a panic unwinding), the
//! undo steps run on drop, newest first. Undo steps keep going past failures: a failed undo is
//! recorded in the log (stderr), never hides the error that caused the rollback.

/// A list of undo steps run in reverse on drop unless committed.
#[derive(Default)]
pub struct Rollback<'a> {
    steps: Vec<(&'static str, Undo<'a>)>,
}

type Undo<'a> = Box<dyn FnOnce() -> Result<(), String> + 'a>;

impl<'a> Rollback<'a> {
    /// An empty guard.
    pub fn new() -> Self {
        Rollback { steps: Vec::new() }
    }

    /// Registers how to undo the step just done; `what` names it in the log.
    pub fn push(&mut self, what: &'static str, undo: impl FnOnce() -> Result<(), String> + 'a) {
        self.steps.push((what, Box::new(undo)));
    }

    /// Keeps everything: no undo step runs.
    pub fn commit(mut self) {
        self.steps.clear();
    }
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        while let Some((what, undo)) = self.steps.pop() {
            if let Err(e) = undo() {
                tracing::warn!("rollback: undo {what}: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn undoes_in_reverse_unless_committed() {
        let log = RefCell::new(Vec::new());
        {
            let mut r = Rollback::new();
            r.push("a", || {
                log.borrow_mut().push("a");
                Ok(())
            });
            r.push("b", || {
                log.borrow_mut().push("b");
                Err("fails, and the rest still runs".into())
            });
            r.push("c", || {
                log.borrow_mut().push("c");
                Ok(())
            });
        }
        assert_eq!(*log.borrow(), ["c", "b", "a"]);
        log.borrow_mut().clear();
        let mut r = Rollback::new();
        r.push("a", || {
            log.borrow_mut().push("a");
            Ok(())
        });
        r.commit();
        assert!(log.borrow().is_empty());
    }

    #[test]
    fn undoes_on_panic() {
        let log = RefCell::new(Vec::new());
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut r = Rollback::new();
            r.push("a", || {
                log.borrow_mut().push("a");
                Ok(())
            });
            panic!("half-way");
        }));
        assert!(result.is_err());
        assert_eq!(*log.borrow(), ["a"]);
    }
}
