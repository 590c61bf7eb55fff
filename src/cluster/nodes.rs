//! The other nodes a node knows of: when each was last heard from, and which people it owns.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::rooms::PersonId;

#[derive(Default)]
pub struct Nodes {
    nodes: HashMap<String, Node>,
    owner: HashMap<PersonId, String>,
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

    pub fn disown(&mut self, id: PersonId) {
        if let Some(node) = self.owner.remove(&id)
            && let Some(n) = self.nodes.get_mut(&node)
        {
            n.people.remove(&id);
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
        assert_eq!(nodes.remove("a"), vec![x]);
        assert_eq!(nodes.owner(x), None);
        assert_eq!(nodes.owner(y), Some("b"));
        assert_eq!(nodes.count(), 1);
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
