//! Packs records into PutRecords calls within the Kinesis limits, such that a person's events
//! keep their order in the stream.
//!
//! Kinesis may reject one entry of a call and accept the next, so two records of one partition
//! key in the same call could land in either order. A call therefore never holds two records
//! of one key: the n-th record of every key goes into the n-th wave, each wave is split into
//! calls within the limits, and the sink finishes one call (retries included) before it sends
//! the next. A key's record is so never sent before its earlier records are acknowledged.

use std::collections::HashMap;

use crate::sink::limits::{
    record_bytes, MAX_BYTES_PER_CALL, MAX_PARTITION_KEY_CHARS, MAX_RECORDS_PER_CALL,
    MAX_RECORD_BYTES,
};
use crate::sink::{Record, Refusal};

/// The calls of one publish, and the records Kinesis would refuse outright.
#[derive(Debug, Default)]
pub struct Plan<'a> {
    pub calls: Vec<Vec<&'a Record>>,
    pub refused: Vec<Refusal>,
}

/// Splits records into calls in wave order (within a wave, in the records' order), each
/// within the Kinesis limits and with at most one record per partition key. A record Kinesis
/// cannot accept at all (too large, a bad partition key) is refused here, before anything is
/// sent; the others are still planned.
pub fn plan_calls(records: &[Record]) -> Plan<'_> {
    let mut plan = Plan::default();
    let (valid, refused): (Vec<&Record>, Vec<&Record>) = records
        .iter()
        .partition(|record| unacceptable(record).is_none());
    plan.refused = refused
        .into_iter()
        .map(|record| Refusal {
            reason: unacceptable(record).unwrap_or_default(),
            record: record.clone(),
        })
        .collect();
    for wave in waves(valid) {
        let mut current: Vec<&Record> = Vec::new();
        let mut current_bytes = 0;
        for record in wave {
            let size = size(record);
            if current.len() == MAX_RECORDS_PER_CALL || current_bytes + size > MAX_BYTES_PER_CALL {
                plan.calls.push(std::mem::take(&mut current));
                current_bytes = 0;
            }
            current.push(record);
            current_bytes += size;
        }
        if !current.is_empty() {
            plan.calls.push(current);
        }
    }
    plan
}

/// The records grouped by how many earlier records share their partition key.
fn waves(records: Vec<&Record>) -> Vec<Vec<&Record>> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut waves: Vec<Vec<&Record>> = Vec::new();
    for record in records {
        let earlier = seen.entry(record.partition_key.as_str()).or_default();
        if *earlier == waves.len() {
            waves.push(Vec::new());
        }
        waves[*earlier].push(record);
        *earlier += 1;
    }
    waves
}

fn size(record: &Record) -> usize {
    record_bytes(&record.data, &record.partition_key)
}

/// Why Kinesis would not accept the record at all, if so.
fn unacceptable(record: &Record) -> Option<String> {
    let size = size(record);
    if size > MAX_RECORD_BYTES {
        return Some(format!(
            "the record is {size} bytes, over Kinesis's {MAX_RECORD_BYTES}-byte record limit"
        ));
    }
    let key_chars = record.partition_key.chars().count();
    if key_chars == 0 || key_chars > MAX_PARTITION_KEY_CHARS {
        return Some(format!(
            "the partition key has {key_chars} characters; Kinesis needs 1 to \
             {MAX_PARTITION_KEY_CHARS}"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::kinesis::fake::record;

    fn keyed(id: &str, key: &str) -> Record {
        Record {
            event_id: id.into(),
            partition_key: key.into(),
            data: b"{}\n".to_vec(),
        }
    }

    fn ids(calls: &[Vec<&Record>]) -> Vec<Vec<String>> {
        calls
            .iter()
            .map(|call| call.iter().map(|r| r.event_id.clone()).collect())
            .collect()
    }

    #[test]
    fn a_call_never_holds_two_records_of_one_person() {
        let records = [
            keyed("a1", "A"),
            keyed("a2", "A"),
            keyed("b1", "B"),
            keyed("a3", "A"),
            keyed("c1", "C"),
            keyed("b2", "B"),
        ];
        let calls = plan_calls(&records).calls;
        assert_eq!(
            ids(&calls),
            [vec!["a1", "b1", "c1"], vec!["a2", "b2"], vec!["a3"]]
        );
    }

    #[test]
    fn distinct_keys_share_one_call() {
        let records: Vec<Record> = (0..20).map(|n| record(n, 10)).collect();
        assert_eq!(plan_calls(&records).calls.len(), 1);
    }

    #[test]
    fn a_wave_over_500_records_is_split_before_the_next_wave() {
        let mut records: Vec<Record> = (0..600).map(|n| record(n, 10)).collect();
        records.push(keyed("again", &records[0].partition_key.clone()));
        let sizes: Vec<usize> = plan_calls(&records).calls.iter().map(Vec::len).collect();
        assert_eq!(sizes, [500, 100, 1]);
    }

    #[test]
    fn a_record_of_exactly_the_limit_is_accepted() {
        let mut exact = record(1, 0);
        exact.data = vec![b'x'; MAX_RECORD_BYTES - exact.partition_key.len()];
        let plan = plan_calls(std::slice::from_ref(&exact));
        assert_eq!((plan.calls.len(), plan.refused.len()), (1, 0));
    }
}
