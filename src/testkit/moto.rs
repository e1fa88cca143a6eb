//! A moto server (local AWS emulator) per test, and helpers to set up and inspect the resources
//! the connector uses. Needs `moto_server` on PATH: `pip install 'moto[server]'`.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// How long moto may take to start answering.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `moto_server` on a free loopback port, killed (with its process group) on drop.
pub struct MotoServer {
    child: Child,
    port: u16,
}

impl MotoServer {
    /// `moto_server` as installed, answering requests on several threads.
    pub fn start() -> MotoServer {
        let mut command = Command::new("moto_server");
        command.args(["-H", "127.0.0.1", "-p"]);
        MotoServer::spawn(command)
    }

    /// moto answering one request at a time. moto's threaded server checks a DynamoDB condition
    /// and applies the write in separate steps, so two racing conditional writes can both pass;
    /// real DynamoDB applies each conditional write atomically, which a serialized server
    /// models. Tests of racing conditional writes use this one.
    pub fn start_serialized() -> MotoServer {
        let mut command = Command::new("python3");
        command.args([
            "-c",
            "import sys, moto.server as server\n\
             run = server.run_simple\n\
             server.run_simple = lambda *a, **k: run(*a, **{**k, 'threaded': False})\n\
             server.main(sys.argv[1:])",
            "-H",
            "127.0.0.1",
            "-p",
        ]);
        MotoServer::spawn(command)
    }

    /// Runs `command` with the port appended, and waits until it answers.
    fn spawn(mut command: Command) -> MotoServer {
        let port = free_port();
        let child = command
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own group, so dropping the server also ends any worker it forks.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start moto ({e}); install it with: pip install 'moto[server]'")
            });
        let mut server = MotoServer { child, port };
        server.wait_until_ready();
        server
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SDK configuration aimed at this server: fixed region and test credentials, so nothing
    /// is looked up from the environment or instance metadata.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .empty_test_environment()
            .region(Region::new("us-east-1"))
            .endpoint_url(self.endpoint())
            .test_credentials()
            .load()
            .await
    }

    fn wait_until_ready(&mut self) {
        let started = Instant::now();
        while started.elapsed() < STARTUP_TIMEOUT {
            if let Some(status) = self.child.try_wait().expect("moto_server status") {
                panic!(
                    "moto exited during startup with {status}; is it installed? \
                     pip install 'moto[server]'"
                );
            }
            if answers_http(self.port) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "moto_server did not answer on port {} within {STARTUP_TIMEOUT:?}",
            self.port
        );
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let signalled = Command::new("kill")
            .args(["-TERM", "--", &group])
            .status()
            .is_ok_and(|s| s.success());
        if !signalled {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

fn answers_http(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        Duration::from_millis(200),
    ) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    let mut head = [0u8; 12];
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_exact(&mut head).is_ok()
        && head.starts_with(b"HTTP/1.")
}

/// The cursor table: partition key `connector_id` (S), on-demand capacity.
pub async fn create_cursor_table(config: &SdkConfig, table: &str) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    aws_sdk_dynamodb::Client::new(config)
        .create_table()
        .table_name(table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("connector_id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("connector_id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create cursor table");
}

/// Creates a stream and waits until it accepts records.
pub async fn create_stream(config: &SdkConfig, stream: &str, shards: i32) {
    use aws_sdk_kinesis::types::StreamStatus;
    let client = aws_sdk_kinesis::Client::new(config);
    client
        .create_stream()
        .stream_name(stream)
        .shard_count(shards)
        .send()
        .await
        .expect("create stream");
    for _ in 0..100 {
        let summary = client
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
            .expect("describe stream");
        if summary
            .stream_description_summary()
            .is_some_and(|s| s.stream_status() == &StreamStatus::Active)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("stream {stream} never became ACTIVE");
}

pub async fn put_secret(config: &SdkConfig, name: &str, text: &str) {
    aws_sdk_secretsmanager::Client::new(config)
        .create_secret()
        .name(name)
        .secret_string(text)
        .send()
        .await
        .expect("create secret");
}

/// One record as read back from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    pub shard_id: String,
    pub sequence_number: String,
    pub partition_key: String,
    pub data: Vec<u8>,
}

/// Every record in the stream, shard by shard, each shard in sequence order.
pub async fn read_all_records(config: &SdkConfig, stream: &str) -> Vec<StreamRecord> {
    use aws_sdk_kinesis::types::ShardIteratorType;
    let client = aws_sdk_kinesis::Client::new(config);
    let shards = client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .expect("list shards");
    let mut records = Vec::new();
    for shard in shards.shards() {
        let mut iterator = client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("shard iterator")
            .shard_iterator;
        while let Some(current) = iterator {
            let page = client
                .get_records()
                .shard_iterator(current)
                .limit(1000)
                .send()
                .await
                .expect("get records");
            if page.records().is_empty() {
                break;
            }
            records.extend(page.records().iter().map(|r| StreamRecord {
                shard_id: shard.shard_id().to_owned(),
                sequence_number: r.sequence_number().to_owned(),
                partition_key: r.partition_key().unwrap_or_default().to_owned(),
                data: r.data().as_ref().to_vec(),
            }));
            iterator = page.next_shard_iterator;
        }
    }
    records
}
