//! The log check (DESIGN §4): a copy that missed entries, or is new, asks the writer for the entries
//! after its last one, naming that entry's term. The writer answers with the next entries only if it
//! holds the same entry at that epoch; otherwise the copy took a history the writer never had (it
//! was written by a writer whose entries were never acknowledged) and must start again from nothing.
//! Histories never merge: data terms differ between writers (see `term`), so an equal term at an epoch
//! means the same entry there, and, entries being applied in order, the same log up to there.

use overlay::{Epoch, Term};

/// A copy's catch-up request: entries from `from` on; `last_term` is the term of the entry at
/// `from - 1` (zero for an empty copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchUp {
    pub from: Epoch,
    pub last_term: Term,
}

impl CatchUp {
    /// What a copy that applied up to `applied` (an entry of `applied_term`) asks for.
    pub fn after(applied: Epoch, applied_term: Term) -> Self {
        CatchUp {
            from: Epoch(applied.0.saturating_add(1)),
            last_term: applied_term,
        }
    }

    /// The epoch whose term the writer must look up in its log before judging (`None`: the copy is
    /// empty and nothing needs checking).
    pub fn to_check(&self) -> Option<Epoch> {
        self.from
            .0
            .checked_sub(1)
            .filter(|last| *last > 0)
            .map(Epoch)
    }
}

/// The writer's answer to a catch-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The copy is a prefix of the writer's log: send the entries from `from` on (none when it is
    /// up to date, which still confirms its copy).
    Send { from: Epoch },
    /// The copy holds an entry the writer does not: it must discard its copy.
    Diverged,
    /// Not a request any copy sends (epoch 0 does not exist).
    Invalid,
}

/// Judges `request` against the writer's log, which ends at `writer_epoch` and holds an entry of
/// `term_at_check` at `request.to_check()` (`None` when it has no entry there).
pub fn judge(request: CatchUp, writer_epoch: Epoch, term_at_check: Option<Term>) -> Verdict {
    if request.from.0 == 0 {
        return Verdict::Invalid;
    }
    let agrees = match request.to_check() {
        None => true,
        Some(last) => last <= writer_epoch && term_at_check == Some(request.last_term),
    };
    if agrees {
        Verdict::Send { from: request.from }
    } else {
        Verdict::Diverged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_copy_gets_the_log_from_the_start_without_a_check() {
        let request = CatchUp::after(Epoch(0), Term(0));
        assert_eq!(
            request,
            CatchUp {
                from: Epoch(1),
                last_term: Term(0)
            }
        );
        assert_eq!(request.to_check(), None);
        assert_eq!(
            judge(request, Epoch(0), None),
            Verdict::Send { from: Epoch(1) }
        );
        assert_eq!(
            judge(request, Epoch(9), None),
            Verdict::Send { from: Epoch(1) }
        );
    }

    #[test]
    fn a_copy_whose_last_entry_the_writer_holds_gets_what_follows() {
        let request = CatchUp::after(Epoch(5), Term(3));
        assert_eq!(request.to_check(), Some(Epoch(5)));
        assert_eq!(
            judge(request, Epoch(9), Some(Term(3))),
            Verdict::Send { from: Epoch(6) }
        );
        // Up to date: an empty answer, which confirms the copy.
        assert_eq!(
            judge(request, Epoch(5), Some(Term(3))),
            Verdict::Send { from: Epoch(6) }
        );
    }

    #[test]
    fn another_term_at_the_copys_last_epoch_or_a_copy_longer_than_the_writer_diverged() {
        let request = CatchUp::after(Epoch(5), Term(3));
        assert_eq!(judge(request, Epoch(9), Some(Term(4))), Verdict::Diverged);
        assert_eq!(judge(request, Epoch(4), None), Verdict::Diverged);
        // A term lookup that found something beyond the writer's end is still a divergence.
        assert_eq!(judge(request, Epoch(4), Some(Term(3))), Verdict::Diverged);
    }

    #[test]
    fn epoch_zero_is_not_a_request_and_the_largest_epoch_does_not_wrap() {
        let zero = CatchUp {
            from: Epoch(0),
            last_term: Term(1),
        };
        assert_eq!(zero.to_check(), None);
        assert_eq!(judge(zero, Epoch(9), None), Verdict::Invalid);
        let top = CatchUp::after(Epoch(u64::MAX), Term(1));
        assert_eq!(top.from, Epoch(u64::MAX));
        assert_eq!(judge(top, Epoch(9), None), Verdict::Diverged);
    }
}
