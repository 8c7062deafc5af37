//! Serves Relay's metadata API to steps: on loopback for process steps, and also on the Docker
//! bridge's gateway address, on the same port, for container steps (`host.docker.internal`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use gantry_engine::metadata::MetadataBackend;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub struct Listener {
    listeners: Vec<TcpListener>,
    port: u16,
}

impl Listener {
    /// Binds 127.0.0.1 on a free port, and with `bridge`, the same port on `bridge_ip` too.
    pub async fn bind(bridge_ip: Option<IpAddr>) -> std::io::Result<Listener> {
        // The bridge port must equal the loopback one (containers are told one port), so retry
        // a few times if another program holds it on the bridge.
        for _ in 0..20 {
            let loopback =
                TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).await?;
            let port = loopback.local_addr()?.port();
            let Some(ip) = bridge_ip else {
                return Ok(Listener {
                    listeners: vec![loopback],
                    port,
                });
            };
            if let Ok(bridge) = TcpListener::bind(SocketAddr::new(ip, port)).await {
                return Ok(Listener {
                    listeners: vec![loopback, bridge],
                    port,
                });
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "cannot listen on the Docker bridge for the metadata API",
        ))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the returned task is aborted.
    pub fn serve(self, backend: Arc<dyn MetadataBackend>) -> JoinHandle<()> {
        let app = super::router(backend);
        tokio::spawn(async move {
            let mut tasks = Vec::new();
            for listener in self.listeners {
                let app = app.clone();
                tasks.push(tokio::spawn(async move {
                    let _ = axum::serve(listener, app).await;
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        })
    }
}
