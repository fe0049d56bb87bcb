//! A packet's lifecycle as a graph (petgraph): one node per event, an edge
//! from each event to the next event of the same skb, and from a clone
//! event to the first event of the skb it created. "Earlier in this
//! packet's life" is then "an ancestor", which keeps a clone's events from
//! counting as earlier than its parent's own later events.
//!
//! The graph also knows what its context may be missing (`Gaps`): an
//! order test that finds nothing proves an absence only where no event
//! can be missing.

use crate::events::Event;
use crate::kernel::kallsyms::Kallsyms;
use crate::lifecycle::Context;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Dfs, Reversed};
use std::cell::OnceCell;

pub struct LifeGraph<'a> {
    /// Events in time order; node i is events[i].
    pub events: Vec<&'a Event>,
    /// Built when a rule first asks about order: most packets are
    /// evaluated without one.
    graph: OnceCell<DiGraph<(), ()>>,
    /// Symbols of the kernel the events came from, for `location` tests
    /// (none: those tests are false).
    pub symbols: Option<&'a Kallsyms>,
    pub gaps: Gaps,
}

/// Events a packet's context may be missing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gaps {
    /// Any event: the kernel lost events while the packet was traced.
    pub lost: bool,
    /// Events after the last one: the context was flushed while active.
    pub cut_short: bool,
}

impl Gaps {
    /// Whether events earlier than a given one may be missing.
    pub fn earlier(&self) -> bool {
        self.lost
    }

    /// Whether events later than a given one may be missing.
    pub fn later(&self) -> bool {
        self.lost || self.cut_short
    }
}

impl<'a> LifeGraph<'a> {
    /// The graph of one context's events (in any order).
    pub fn new(events: impl IntoIterator<Item = &'a Event>) -> LifeGraph<'a> {
        let mut events: Vec<&Event> = events.into_iter().collect();
        events.sort_by_key(|e| e.ts);
        LifeGraph {
            events,
            graph: OnceCell::new(),
            symbols: None,
            gaps: Gaps::default(),
        }
    }

    /// The graph of a context, with what it may be missing.
    pub fn of(ctx: &'a Context) -> LifeGraph<'a> {
        let mut g = LifeGraph::new(&ctx.events);
        g.gaps = Gaps {
            lost: ctx.events_lost,
            cut_short: ctx.cut_short,
        };
        g
    }

    /// With the kernel symbols that name drop locations.
    pub fn with_symbols(mut self, symbols: &'a Kallsyms) -> LifeGraph<'a> {
        self.symbols = Some(symbols);
        self
    }

    fn graph(&self) -> &DiGraph<(), ()> {
        self.graph.get_or_init(|| {
            let events = &self.events;
            let mut graph = DiGraph::with_capacity(events.len(), events.len());
            let nodes: Vec<NodeIndex> = events.iter().map(|_| graph.add_node(())).collect();
            // A packet has a few skbs: lists beat hash maps here.
            let mut last_of_skb: Vec<(u64, NodeIndex)> = Vec::new();
            // Clone events waiting for their child's first event.
            let mut pending_child: Vec<(u64, NodeIndex)> = Vec::new();
            for (i, ev) in events.iter().enumerate() {
                let node = nodes[i];
                match last_of_skb.iter_mut().find(|(skb, _)| *skb == ev.skb) {
                    Some((_, prev)) => {
                        graph.add_edge(*prev, node, ());
                        *prev = node;
                    }
                    None => {
                        if let Some(at) = pending_child.iter().position(|(c, _)| *c == ev.skb) {
                            graph.add_edge(pending_child.swap_remove(at).1, node, ());
                        }
                        last_of_skb.push((ev.skb, node));
                    }
                }
                if let Some(child) = ev.clone {
                    match pending_child.iter_mut().find(|(c, _)| *c == child) {
                        Some((_, parent)) => *parent = node,
                        None => pending_child.push((child, node)),
                    }
                }
            }
            graph
        })
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Nodes before `i` in the packet's life (ancestors), nearest first.
    pub fn earlier(&self, i: usize) -> Vec<usize> {
        let graph = self.graph();
        let mut dfs = Dfs::new(Reversed(graph), NodeIndex::new(i));
        let mut out = Vec::new();
        while let Some(n) = dfs.next(Reversed(graph)) {
            if n.index() != i {
                out.push(n.index());
            }
        }
        out
    }

    /// Nodes after `i` in the packet's life (descendants).
    pub fn later(&self, i: usize) -> Vec<usize> {
        let graph = self.graph();
        let mut dfs = Dfs::new(graph, NodeIndex::new(i));
        let mut out = Vec::new();
        while let Some(n) = dfs.next(graph) {
            if n.index() != i {
                out.push(n.index());
            }
        }
        out
    }
}
