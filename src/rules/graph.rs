//! A packet's lifecycle as a graph (petgraph): one node per event, an edge
//! from each event to the next event of the same skb, and from a clone
//! event to the first event of the skb it created. "Earlier in this
//! packet's life" is then "an ancestor", which keeps a clone's events from
//! counting as earlier than its parent's own later events.

use crate::events::Event;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Dfs, Reversed};
use std::collections::HashMap;

pub struct LifeGraph<'a> {
    /// Events in time order; node i is events[i].
    pub events: Vec<&'a Event>,
    graph: DiGraph<(), ()>,
}

impl<'a> LifeGraph<'a> {
    /// Builds the graph of one context's events (in any order).
    pub fn new(events: impl IntoIterator<Item = &'a Event>) -> LifeGraph<'a> {
        let mut events: Vec<&Event> = events.into_iter().collect();
        events.sort_by_key(|e| e.ts);
        let mut graph = DiGraph::with_capacity(events.len(), events.len());
        let nodes: Vec<NodeIndex> = events.iter().map(|_| graph.add_node(())).collect();
        let mut last_of_skb: HashMap<u64, NodeIndex> = HashMap::new();
        // Clone events waiting for their child's first event.
        let mut pending_child: HashMap<u64, NodeIndex> = HashMap::new();
        for (i, ev) in events.iter().enumerate() {
            let node = nodes[i];
            match last_of_skb.get(&ev.skb) {
                Some(prev) => {
                    graph.add_edge(*prev, node, ());
                }
                None => {
                    if let Some(parent) = pending_child.remove(&ev.skb) {
                        graph.add_edge(parent, node, ());
                    }
                }
            }
            last_of_skb.insert(ev.skb, node);
            if let Some(child) = ev.clone {
                pending_child.insert(child, node);
            }
        }
        LifeGraph { events, graph }
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Nodes before `i` in the packet's life (ancestors), nearest first.
    pub fn earlier(&self, i: usize) -> Vec<usize> {
        let mut dfs = Dfs::new(Reversed(&self.graph), NodeIndex::new(i));
        let mut out = Vec::new();
        while let Some(n) = dfs.next(Reversed(&self.graph)) {
            if n.index() != i {
                out.push(n.index());
            }
        }
        out
    }

    /// Nodes after `i` in the packet's life (descendants).
    pub fn later(&self, i: usize) -> Vec<usize> {
        let mut dfs = Dfs::new(&self.graph, NodeIndex::new(i));
        let mut out = Vec::new();
        while let Some(n) = dfs.next(&self.graph) {
            if n.index() != i {
                out.push(n.index());
            }
        }
        out
    }
}
