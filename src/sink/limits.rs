//! What one stream record may hold. Kinesis's limits, kept here once: the normalizer sizes its
//! lines and partition keys by them, the Kinesis sink plans its calls by them.

/// PutRecords accepts at most this many records per call.
pub const MAX_RECORDS_PER_CALL: usize = 500;
/// PutRecords accepts at most this many bytes (data plus partition keys) per call.
pub const MAX_BYTES_PER_CALL: usize = 5 * 1024 * 1024;
/// One record's data plus partition key may not exceed this.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// Kinesis partition keys are 1 to 256 Unicode characters.
pub const MAX_PARTITION_KEY_CHARS: usize = 256;
/// Keys are kept within this many bytes, which also keeps them within the character limit.
pub const MAX_PARTITION_KEY_BYTES: usize = MAX_PARTITION_KEY_CHARS;
/// Longest data (a line with its `\n`) that fits a record next to any partition key.
pub const MAX_RECORD_DATA_BYTES: usize = MAX_RECORD_BYTES - MAX_PARTITION_KEY_BYTES;

/// Bytes a record counts against the limits.
pub fn record_bytes(data: &[u8], partition_key: &str) -> usize {
    data.len() + partition_key.len()
}
