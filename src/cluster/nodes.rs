//! The other nodes a node knows of: when each was last heard from, and which people it owns.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::rooms::PersonId;

#[derive(Default)]
pub struct Nodes {
    nodes: HashMap<String, Node>,
    owner: HashMap<PersonId, String>,
    /// Their pages' resume keys, both ways.
    resume: HashMap<PersonId, String>,
    by_resume: HashMap<String, PersonId>,
    /// Those whose page came back on another node: their connection here is dead, which their
    /// own node says, unless it is quiet.
    replaced: HashSet<PersonId>,
}

struct Node {
    last_seen: Instant,
    people: HashSet<PersonId>,
}

impl Nodes {
    /// Notes that `node` spoke at `now`; returns true if it was not known (new, or back).
    pub fn heard(&mut self, node: &str, now: Instant) -> bool {
        match self.nodes.get_mut(node) {
            Some(n) => {
                n.last_seen = now;
                false
            }
            None => {
                self.nodes.insert(node.to_owned(), Node { last_seen: now, people: HashSet::new() });
                true
            }
        }
    }

    /// Whether `node` is alive, as far as this node knows.
    pub fn knows(&self, node: &str) -> bool {
        self.nodes.contains_key(node)
    }

    /// Records that `id` is connected to `node`.
    pub fn own(&mut self, node: &str, id: PersonId) {
        if let Some(n) = self.nodes.get_mut(node) {
            n.people.insert(id);
            self.owner.insert(id, node.to_owned());
        }
    }

    /// Records the resume key of `id`'s page.
    pub fn set_resume(&mut self, id: PersonId, key: String) {
        if self.owner.contains_key(&id) {
            self.by_resume.insert(key.clone(), id);
            self.resume.insert(id, key);
        }
    }

    /// The page with resume key `key` came back on some node: the person it was here is replaced.
    /// Returns them, if they are someone of another node.
    pub fn resumed(&mut self, key: &str) -> Option<PersonId> {
        let id = *self.by_resume.get(key)?;
        self.replaced.insert(id);
        Some(id)
    }

    /// The people of `node` whose pages came back elsewhere.
    pub fn replaced_of(&self, node: &str) -> Vec<PersonId> {
        self.nodes
            .get(node)
            .map(|n| n.people.iter().filter(|id| self.replaced.contains(id)).copied().collect())
            .unwrap_or_default()
    }

    pub fn disown(&mut self, id: PersonId) {
        if let Some(node) = self.owner.remove(&id)
            && let Some(n) = self.nodes.get_mut(&node)
        {
            n.people.remove(&id);
        }
        self.forget_resume(id);
    }

    fn forget_resume(&mut self, id: PersonId) {
        self.replaced.remove(&id);
        if let Some(key) = self.resume.remove(&id)
            && self.by_resume.get(&key) == Some(&id)
        {
            self.by_resume.remove(&key);
        }
    }

    /// The node `id` is connected to, if it is someone else's.
    pub fn owner(&self, id: PersonId) -> Option<&str> {
        self.owner.get(&id).map(String::as_str)
    }

    pub fn people_of(&self, node: &str) -> Vec<PersonId> {
        self.nodes.get(node).map(|n| n.people.iter().copied().collect()).unwrap_or_default()
    }

    /// Forgets a node; returns the people it owned.
    pub fn remove(&mut self, node: &str) -> Vec<PersonId> {
        let Some(n) = self.nodes.remove(node) else { return Vec::new() };
        for id in &n.people {
            self.owner.remove(id);
            self.forget_resume(*id);
        }
        n.people.into_iter().collect()
    }

    /// The nodes not heard from for longer than `timeout`.
    pub fn silent(&self, now: Instant, timeout: Duration) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| now.saturating_duration_since(n.last_seen) > timeout)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Whether `node` was heard from within `timeout` of `now`.
    pub fn heard_within(&self, node: &str, now: Instant, timeout: Duration) -> bool {
        self.nodes.get(node).is_some_and(|n| now.saturating_duration_since(n.last_seen) <= timeout)
    }

    /// The nodes heard from within `timeout` of `now`.
    pub fn heard_lately(&self, now: Instant, timeout: Duration) -> Vec<String> {
        self.nodes.keys().filter(|node| self.heard_within(node, now, timeout)).cloned().collect()
    }

    /// Every node known, by id, with how many people it owns.
    pub fn list(&self) -> Vec<(String, usize)> {
        let mut nodes: Vec<_> = self.nodes.iter().map(|(id, n)| (id.clone(), n.people.len())).collect();
        nodes.sort_unstable();
        nodes
    }

    pub fn count(&self) -> usize {
        self.nodes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_node_is_found_and_its_people_returned() {
        let mut nodes = Nodes::default();
        let t0 = Instant::now();
        assert!(nodes.heard("a", t0));
        assert!(nodes.heard("b", t0));
        let (x, y) = (PersonId::random(), PersonId::random());
        nodes.own("a", x);
        nodes.own("b", y);
        assert_eq!(nodes.owner(x), Some("a"));
        assert!(!nodes.heard("b", t0 + Duration::from_secs(8)));
        let silent = nodes.silent(t0 + Duration::from_secs(11), Duration::from_secs(10));
        assert_eq!(silent, vec!["a".to_owned()]);
        let t1 = t0 + Duration::from_secs(11);
        assert!(nodes.heard_within("b", t1, Duration::from_secs(3)));
        assert!(!nodes.heard_within("a", t1, Duration::from_secs(3)), "quiet, though not yet gone");
        assert!(!nodes.heard_within("never", t1, Duration::from_secs(3)));
        assert_eq!(nodes.heard_lately(t1, Duration::from_secs(3)), vec!["b".to_owned()]);
        assert_eq!(nodes.remove("a"), vec![x]);
        assert_eq!(nodes.owner(x), None);
        assert_eq!(nodes.owner(y), Some("b"));
        assert_eq!(nodes.count(), 1);
    }

    #[test]
    fn a_page_back_elsewhere_marks_its_old_person_replaced_until_they_are_gone() {
        let mut nodes = Nodes::default();
        nodes.heard("a", Instant::now());
        let (x, y) = (PersonId::random(), PersonId::random());
        nodes.own("a", x);
        nodes.own("a", y);
        nodes.set_resume(x, "kx".into());
        nodes.set_resume(PersonId::random(), "of nobody known".into());
        assert_eq!(nodes.resumed("of nobody known"), None);
        assert_eq!(nodes.replaced_of("a"), vec![]);
        assert_eq!(nodes.resumed("kx"), Some(x));
        assert_eq!(nodes.replaced_of("a"), vec![x]);
        nodes.disown(x);
        assert_eq!(nodes.replaced_of("a"), vec![]);
        assert_eq!(nodes.resumed("kx"), None, "forgotten with them");
    }

    #[test]
    fn people_of_an_unknown_node_are_not_recorded() {
        let mut nodes = Nodes::default();
        let x = PersonId::random();
        nodes.own("ghost", x);
        assert_eq!(nodes.owner(x), None);
        nodes.heard("a", Instant::now());
        nodes.own("a", x);
        nodes.disown(x);
        assert!(nodes.people_of("a").is_empty());
    }
}
