//! Every malformed registration is refused with INVALID_ARGUMENT and a message naming the field.

use chat_proto::bootstrap::RegisterRequest;
use tempfile::tempdir;
use tonic::Code;

use crate::helpers::{member_request, node, spawn_app};

#[tokio::test]
async fn a_request_without_a_node_is_an_invalid_argument() {
    let directory = tempdir().expect("temporary directory");
    let mut app = spawn_app(&directory).await;

    let status = app
        .client
        .register(member_request(RegisterRequest { node: None }))
        .await
        .expect_err("must be refused");

    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("node"), "{}", status.message());
    app.stop().await;
}

#[tokio::test]
async fn id_zero_is_an_invalid_argument_naming_the_id() {
    let directory = tempdir().expect("temporary directory");
    let mut app = spawn_app(&directory).await;
    let mut zero = node(1);
    zero.id = 0;

    let status = app.register(zero).await.expect_err("must be refused");

    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("node.id"), "{}", status.message());
    app.stop().await;
}

#[tokio::test]
async fn an_empty_host_is_an_invalid_argument_naming_the_host() {
    let directory = tempdir().expect("temporary directory");
    let mut app = spawn_app(&directory).await;
    let mut hostless = node(1);
    hostless.host = String::new();

    let status = app.register(hostless).await.expect_err("must be refused");

    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("node.host"),
        "{}",
        status.message()
    );
    app.stop().await;
}

#[tokio::test]
async fn each_port_that_is_zero_or_above_65535_is_an_invalid_argument_naming_that_port() {
    let directory = tempdir().expect("temporary directory");
    let mut app = spawn_app(&directory).await;
    type Setter = fn(&mut chat_proto::bootstrap::NodeAddress, u32);
    let ports: [(&str, Setter); 4] = [
        ("control_port", |n, p| n.control_port = p),
        ("data_port", |n, p| n.data_port = p),
        ("admin_port", |n, p| n.admin_port = p),
        ("http_port", |n, p| n.http_port = p),
    ];

    for (field, set) in ports {
        for bad in [0, 65_536, u32::MAX] {
            let mut address = node(1);
            set(&mut address, bad);

            let status = app.register(address).await.expect_err("must be refused");

            assert_eq!(status.code(), Code::InvalidArgument, "{field} = {bad}");
            assert!(
                status.message().contains(&format!("node.{field}")),
                "{field} = {bad}: {}",
                status.message()
            );
        }
    }
    assert!(
        app.list().await.is_empty(),
        "refused nodes must not be registered"
    );
    app.stop().await;
}
