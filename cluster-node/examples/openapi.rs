//! Prints the JSON API's OpenAPI document: `cargo run -p cluster-node --example openapi > openapi.json`.

fn main() {
    println!("{}", cluster_node::web::openapi_json());
}
