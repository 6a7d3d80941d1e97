//! The membrane the store asks before it writes a post: the circles this node has
//! left, closed circles' current members, and the hides and blocks of the moderators
//! this node follows.
//!
//! The circles module (`circles::membrane`) folds the signed records into this state;
//! the store only reads it, in the same decision every write path takes (gossip,
//! sync, import), so a post that the gate refuses is neither stored nor relayed.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use aidmesh_proto::circle;
use aidmesh_proto::{AuthorKey, PostId};

/// What the gate says of one post.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing against it.
    Pass,
    /// Of a circle this node has left.
    Left,
    /// A closed circle's post by someone who is not a current member.
    NotMember,
    /// Hidden, or by an author blocked, by a moderator this node follows.
    Moderated,
}

/// The gate's state.
#[derive(Debug, Default)]
struct State {
    /// Circles this node left while running. A leave marks the circle here before it
    /// deletes the circle's posts, so a write already under way (a gossip batch, a
    /// fetched sync batch) lands before the deletion and none lands after it.
    left: HashSet<Box<str>>,
    /// Current members of each closed circle whose records this node holds, and
    /// whether the founder is known (then it is among them, and no hash is needed to
    /// tell a stranger from the founder).
    members: HashMap<Box<str>, (HashSet<AuthorKey>, bool)>,
    /// Posts hidden by followed moderators.
    hidden: HashSet<PostId>,
    /// `(circle, author)` blocked by followed moderators.
    blocked: HashSet<(Box<str>, AuthorKey)>,
}

#[derive(Debug, Default)]
struct Shared {
    state: RwLock<State>,
    /// Bumped by every change, so that a refusal judged by the gate as it was before
    /// a change can be told from one judged after it (see [`Gate::generation`]).
    generation: AtomicU64,
}

/// A cheap-to-clone handle on the gate.
#[derive(Clone, Debug, Default)]
pub struct Gate(Arc<Shared>);

impl Gate {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.0.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The state for a change. The generation moves on while the lock is held, so a
    /// verdict read from the old state never carries the new generation.
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        let guard = self.0.state.write().unwrap_or_else(|p| p.into_inner());
        self.0.generation.fetch_add(1, Ordering::AcqRel);
        guard
    }

    /// How many times the gate has changed. A writer reads it before it asks the
    /// gate and keeps the refusals it was given only if it has not moved by the time
    /// it remembers them: a refusal the old gate gave may be one the new gate would
    /// not, and remembering it would keep sync from fetching the post again.
    pub fn generation(&self) -> u64 {
        self.0.generation.load(Ordering::Acquire)
    }

    /// Whether `author` may post `id` in `circle` here.
    pub fn check(&self, circle: &str, author: &AuthorKey, id: &PostId) -> Verdict {
        let s = self.read();
        if !s.left.is_empty() && s.left.contains(circle) {
            return Verdict::Left;
        }
        if circle::is_closed(circle) && !member_in(&s, circle, author) {
            return Verdict::NotMember;
        }
        if s.hidden.contains(id)
            || (!s.blocked.is_empty() && s.blocked.contains(&(circle.into(), *author)))
        {
            return Verdict::Moderated;
        }
        Verdict::Pass
    }

    /// Whether `author` is a current member of `circle` (every key is, of an open
    /// circle).
    pub fn is_member(&self, circle: &str, author: &AuthorKey) -> bool {
        !circle::is_closed(circle) || member_in(&self.read(), circle, author)
    }

    /// Refuses every post of `circle` from now on: this node is leaving it.
    pub fn leave(&self, circle: &str) {
        self.write().left.insert(circle.into());
    }

    /// Lets `circle`'s posts in again: this node (re)joined it.
    pub fn join(&self, circle: &str) {
        let mut s = self.0.state.write().unwrap_or_else(|p| p.into_inner());
        if s.left.remove(circle) {
            self.0.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Replaces the members of closed circle `circle`; `founder_known` when the
    /// founder is among them.
    pub fn set_members(&self, circle: &str, members: HashSet<AuthorKey>, founder_known: bool) {
        self.write()
            .members
            .insert(circle.into(), (members, founder_known));
    }

    /// Forgets a closed circle's members (its posts are refused again).
    pub fn forget(&self, circle: &str) {
        self.write().members.remove(circle);
    }

    /// Replaces what followed moderators hide and block.
    pub fn set_moderation(&self, hidden: HashSet<PostId>, blocked: HashSet<(Box<str>, AuthorKey)>) {
        let mut s = self.write();
        s.hidden = hidden;
        s.blocked = blocked;
    }
}

fn member_in(s: &State, circle: &str, author: &AuthorKey) -> bool {
    match s.members.get(circle) {
        Some((m, true)) => m.contains(author),
        Some((m, false)) => m.contains(author) || circle::is_founder(circle, author),
        None => circle::is_founder(circle, author),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_circles_admit_members_and_the_founder_only() {
        let founder = AuthorKey([1; 32]);
        let circle = circle::closed_name("riverside", &founder);
        let (b, c) = (AuthorKey([2; 32]), AuthorKey([3; 32]));
        let gate = Gate::default();
        let id = PostId([9; 32]);
        assert_eq!(gate.check(&circle, &founder, &id), Verdict::Pass);
        assert_eq!(gate.check(&circle, &b, &id), Verdict::NotMember);
        gate.set_members(&circle, [b].into(), false);
        assert_eq!(gate.check(&circle, &b, &id), Verdict::Pass);
        assert_eq!(gate.check(&circle, &c, &id), Verdict::NotMember);
        assert_eq!(gate.check("commons", &c, &id), Verdict::Pass);
        gate.set_moderation([id].into(), [("commons".into(), c)].into());
        assert_eq!(gate.check(&circle, &b, &id), Verdict::Moderated);
        assert_eq!(
            gate.check("commons", &c, &PostId([8; 32])),
            Verdict::Moderated
        );
    }

    #[test]
    fn a_left_circle_refuses_everything_until_joined_again() {
        let gate = Gate::default();
        let (author, id) = (AuthorKey([1; 32]), PostId([9; 32]));
        gate.leave("riverside");
        assert_eq!(gate.check("riverside", &author, &id), Verdict::Left);
        assert_eq!(gate.check("commons", &author, &id), Verdict::Pass);
        let before = gate.generation();
        gate.join("riverside");
        assert!(gate.generation() > before);
        assert_eq!(gate.check("riverside", &author, &id), Verdict::Pass);
        let after = gate.generation();
        gate.join("commons");
        assert_eq!(
            gate.generation(),
            after,
            "joining a circle never left changes nothing"
        );
    }

    #[test]
    fn every_change_moves_the_generation_on() {
        let gate = Gate::default();
        let before = gate.generation();
        gate.check("commons", &AuthorKey([1; 32]), &PostId([9; 32]));
        assert_eq!(gate.generation(), before, "asking changes nothing");
        gate.set_members("x~00", HashSet::new(), false);
        let after_members = gate.generation();
        assert!(after_members > before);
        gate.forget("x~00");
        assert!(gate.generation() > after_members);
        let after_forget = gate.generation();
        gate.set_moderation(HashSet::new(), HashSet::new());
        assert!(gate.generation() > after_forget);
    }
}
