//! Packs records into PutRecords calls within the Kinesis limits.

use crate::sink::limits::{
    record_bytes, MAX_BYTES_PER_CALL, MAX_PARTITION_KEY_CHARS, MAX_RECORDS_PER_CALL,
    MAX_RECORD_BYTES,
};
use crate::sink::{Record, SinkError};

/// Splits records into calls within the Kinesis limits, keeping their order. Checks every
/// record first, so an invalid record fails the publish before anything is sent.
pub fn plan_calls(records: &[Record]) -> Result<Vec<Vec<&Record>>, SinkError> {
    for record in records {
        check(record)?;
    }
    let mut calls: Vec<Vec<&Record>> = Vec::new();
    let mut current: Vec<&Record> = Vec::new();
    let mut current_bytes = 0;
    for record in records {
        let size = size(record);
        if current.len() == MAX_RECORDS_PER_CALL || current_bytes + size > MAX_BYTES_PER_CALL {
            calls.push(std::mem::take(&mut current));
            current_bytes = 0;
        }
        current.push(record);
        current_bytes += size;
    }
    if !current.is_empty() {
        calls.push(current);
    }
    Ok(calls)
}

fn size(record: &Record) -> usize {
    record_bytes(&record.data, &record.partition_key)
}

/// Whether Kinesis would accept the record at all.
fn check(record: &Record) -> Result<(), SinkError> {
    let size = size(record);
    if size > MAX_RECORD_BYTES {
        return Err(SinkError::OversizeRecord {
            event_id: record.event_id.clone(),
            size,
            limit: MAX_RECORD_BYTES,
        });
    }
    let key_chars = record.partition_key.chars().count();
    if key_chars == 0 || key_chars > MAX_PARTITION_KEY_CHARS {
        return Err(SinkError::Service(format!(
            "event {} has a partition key of {key_chars} characters; Kinesis needs 1 to \
             {MAX_PARTITION_KEY_CHARS}",
            record.event_id
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::kinesis::fake::record;

    #[test]
    fn a_record_of_exactly_the_limit_is_accepted() {
        let mut exact = record(1, 0);
        exact.data = vec![b'x'; MAX_RECORD_BYTES - exact.partition_key.len()];
        assert_eq!(plan_calls(std::slice::from_ref(&exact)).unwrap().len(), 1);
    }
}
