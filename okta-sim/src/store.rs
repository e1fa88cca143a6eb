//! The System Log itself: events in persistence order plus an index by `published`, and the two
//! ways Okta reads it (polling by persistence order, bounded windows by published time).

use std::sync::Arc;

use super::clock::{format_timestamp, now_ms};
use super::cursor::After;
use super::events::{render, uuid_for};
use super::filter::EventFilter;
use super::kinds::{kinds, KindPicker};
use super::rng::SplitMix;
use super::world::World;

enum Body {
    Generated {
        kind: u16,
        seed: u64,
    },
    Raw {
        json: Arc<str>,
        event_type: Arc<str>,
    },
}

struct Stored {
    published_ms: i64,
    body: Body,
}

/// What a request selects besides its paging position.
pub(crate) struct Selection<'a> {
    pub filter: &'a EventFilter,
    /// Keywords that must all appear (case-insensitively) in the event.
    pub keywords: &'a [String],
}

/// A page worth of storage sequences and where the next page starts.
pub(crate) struct PageSlice {
    pub seqs: Vec<usize>,
    /// `None` when a bounded query has nothing left.
    pub next: Option<After>,
}

pub(crate) struct EventLog {
    world: World,
    picker: KindPicker,
    rng: SplitMix,
    events: Vec<Stored>,
    /// (published, sequence) of every event, sorted: bounded queries binary-search it.
    by_published: Vec<(i64, u32)>,
}

impl EventLog {
    pub(crate) fn new(seed: u64, system_ratio: f64, non_catalog_ratio: f64) -> Self {
        EventLog {
            world: World::new(seed),
            picker: KindPicker::new(system_ratio, non_catalog_ratio),
            rng: SplitMix::new(seed),
            events: Vec::new(),
            by_published: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }

    /// Appends `n` generated events published at the times `published(i)` returns.
    pub(crate) fn append_generated(
        &mut self,
        n: usize,
        mut published: impl FnMut(usize, &mut SplitMix) -> i64,
    ) -> Vec<String> {
        self.events.reserve(n);
        self.by_published.reserve(n);
        (0..n)
            .map(|i| {
                let kind = self.picker.pick(&mut self.rng);
                let seed = self.rng.next_u64();
                let published_ms = published(i, &mut self.rng);
                self.push(Stored {
                    published_ms,
                    body: Body::Generated { kind, seed },
                });
                uuid_for(seed)
            })
            .collect()
    }

    /// Appends scripted events, filling in `uuid` and `published` when missing.
    pub(crate) fn append_raw(&mut self, events: Vec<serde_json::Value>) {
        for mut event in events {
            let now = now_ms();
            if let Some(obj) = event.as_object_mut() {
                obj.entry("uuid")
                    .or_insert_with(|| uuid::Uuid::new_v4().to_string().into());
                obj.entry("published")
                    .or_insert_with(|| format_timestamp(now).into());
            }
            let published_ms = event["published"]
                .as_str()
                .and_then(super::clock::parse_timestamp)
                .unwrap_or(now);
            let event_type: Arc<str> = event["eventType"].as_str().unwrap_or("").into();
            self.push(Stored {
                published_ms,
                body: Body::Raw {
                    json: event.to_string().into(),
                    event_type,
                },
            });
        }
    }

    fn push(&mut self, stored: Stored) {
        let seq = self.events.len() as u32;
        let key = (stored.published_ms, seq);
        // Appends are nearly always the newest; late events land inside the index.
        let at = self.by_published.partition_point(|&k| k <= key);
        self.by_published.insert(at, key);
        self.events.push(stored);
    }

    fn event_type(&self, seq: usize) -> &str {
        match &self.events[seq].body {
            Body::Generated { kind, .. } => kinds()[*kind as usize].event_type,
            Body::Raw { event_type, .. } => event_type,
        }
    }

    pub(crate) fn render_into(&self, seq: usize, buf: &mut String) {
        let stored = &self.events[seq];
        match &stored.body {
            Body::Generated { kind, seed } => {
                render(&self.world, *kind, *seed, stored.published_ms, buf)
            }
            Body::Raw { json, .. } => buf.push_str(json),
        }
    }

    /// Renders the given events as a JSON array.
    pub(crate) fn render_page(&self, seqs: &[usize]) -> String {
        let mut body = String::with_capacity(seqs.len() * 2200 + 2);
        body.push('[');
        for (i, &seq) in seqs.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            self.render_into(seq, &mut body);
        }
        body.push(']');
        body
    }

    pub(crate) fn all_events(&self) -> Vec<serde_json::Value> {
        let mut buf = String::new();
        (0..self.events.len())
            .map(|seq| {
                buf.clear();
                self.render_into(seq, &mut buf);
                serde_json::from_str(&buf).unwrap_or(serde_json::Value::Null)
            })
            .collect()
    }

    fn selected(&self, seq: usize, sel: &Selection<'_>, scratch: &mut String) -> bool {
        if !sel.filter.matches(self.event_type(seq)) {
            return false;
        }
        if sel.keywords.is_empty() {
            return true;
        }
        scratch.clear();
        self.render_into(seq, scratch);
        let haystack = scratch.to_lowercase();
        sel.keywords.iter().all(|k| haystack.contains(k.as_str()))
    }

    /// Polling: events in persistence order from `start_seq`; on the first request (no cursor)
    /// only those published at or after `since`. Always yields a next position.
    pub(crate) fn poll(
        &self,
        start_seq: usize,
        since_ms: Option<i64>,
        sel: &Selection<'_>,
        limit: usize,
    ) -> PageSlice {
        let mut seqs = Vec::with_capacity(limit.min(self.events.len()));
        let mut scratch = String::new();
        let mut next_seq = start_seq;
        for seq in start_seq..self.events.len() {
            next_seq = seq + 1;
            if since_ms.is_some_and(|since| self.events[seq].published_ms < since) {
                continue;
            }
            if self.selected(seq, sel, &mut scratch) {
                seqs.push(seq);
                if seqs.len() == limit {
                    break;
                }
            }
        }
        PageSlice {
            seqs,
            next: Some(After::Poll {
                next_seq: next_seq as u64,
            }),
        }
    }

    /// Bounded window `since <= published < until`, ordered by (published, sequence), ascending
    /// or descending; continues after `after` when given. The next position is only returned while
    /// matching events remain.
    pub(crate) fn bounded(
        &self,
        since_ms: i64,
        until_ms: i64,
        descending: bool,
        after: Option<After>,
        sel: &Selection<'_>,
        limit: usize,
    ) -> PageSlice {
        let lo = self.by_published.partition_point(|&(p, _)| p < since_ms);
        let hi = self.by_published.partition_point(|&(p, _)| p < until_ms);
        let window = &self.by_published[lo..hi.max(lo)];
        let mut scratch = String::new();
        let mut seqs = Vec::new();
        let mut last = None;
        let mut more = false;
        let mut visit = |&(p, s): &(i64, u32), seqs: &mut Vec<usize>| -> bool {
            if !self.selected(s as usize, sel, &mut scratch) {
                return true;
            }
            if seqs.len() == limit {
                more = true;
                return false;
            }
            seqs.push(s as usize);
            last = Some((p, s as u64));
            true
        };
        if descending {
            let end = match after {
                Some(After::Descending { published_ms, seq }) => {
                    window.partition_point(|&(p, s)| (p, s as u64) < (published_ms, seq))
                }
                _ => window.len(),
            };
            for k in window[..end].iter().rev() {
                if !visit(k, &mut seqs) {
                    break;
                }
            }
        } else {
            let start = match after {
                Some(After::Ascending { published_ms, seq }) => {
                    window.partition_point(|&(p, s)| (p, s as u64) <= (published_ms, seq))
                }
                _ => 0,
            };
            for k in &window[start..] {
                if !visit(k, &mut seqs) {
                    break;
                }
            }
        }
        let next = match (more, last) {
            (true, Some((published_ms, seq))) if descending => {
                Some(After::Descending { published_ms, seq })
            }
            (true, Some((published_ms, seq))) => Some(After::Ascending { published_ms, seq }),
            _ => None,
        };
        PageSlice { seqs, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_with(published: &[i64]) -> EventLog {
        let mut log = EventLog::new(1, 0.1, 0.1);
        log.append_generated(published.len(), |i, _| published[i]);
        log
    }

    fn all() -> (EventFilter, Vec<String>) {
        (EventFilter::default(), Vec::new())
    }

    #[test]
    fn polling_follows_persistence_order_and_always_has_a_next_position() {
        let log = log_with(&[100, 300, 200, 400]);
        let (f, k) = all();
        let sel = Selection {
            filter: &f,
            keywords: &k,
        };
        let first = log.poll(0, Some(150), &sel, 2);
        assert_eq!(first.seqs, vec![1, 2]);
        let Some(After::Poll { next_seq }) = first.next else {
            panic!()
        };
        let rest = log.poll(next_seq as usize, None, &sel, 2);
        assert_eq!(rest.seqs, vec![3]);
        let Some(After::Poll { next_seq }) = rest.next else {
            panic!()
        };
        let caught_up = log.poll(next_seq as usize, None, &sel, 2);
        assert!(caught_up.seqs.is_empty());
        assert_eq!(caught_up.next, Some(After::Poll { next_seq: 4 }));
    }

    #[test]
    fn bounded_window_orders_by_published_and_ends_without_next() {
        let log = log_with(&[100, 300, 200, 400, 250]);
        let (f, k) = all();
        let sel = Selection {
            filter: &f,
            keywords: &k,
        };
        let page = log.bounded(150, 400, false, None, &sel, 2);
        assert_eq!(page.seqs, vec![2, 4]);
        let page2 = log.bounded(150, 400, false, page.next, &sel, 2);
        assert_eq!(page2.seqs, vec![1]);
        assert_eq!(page2.next, None);
        let desc = log.bounded(0, 1000, true, None, &sel, 10);
        assert_eq!(desc.seqs, vec![3, 1, 4, 2, 0]);
    }

    #[test]
    fn filters_select_by_event_type() {
        let mut log = log_with(&[]);
        log.append_raw(vec![
            serde_json::json!({"eventType": "user.session.start", "published": "2024-01-01T00:00:00.000Z"}),
            serde_json::json!({"eventType": "user.session.end", "published": "2024-01-01T00:00:01.000Z"}),
        ]);
        let f = EventFilter::parse(r#"eventType eq "user.session.end""#).unwrap();
        let sel = Selection {
            filter: &f,
            keywords: &[],
        };
        assert_eq!(log.poll(0, None, &sel, 10).seqs, vec![1]);
        let all = log.all_events();
        assert!(all[0]["uuid"].is_string());
    }
}
