//! A network namespace for a test: one nats-server node of a cluster runs
//! inside it, joined to the host by a veth pair, so taking the pair down
//! partitions that node from its peers and from every client at once.
//! Created and deleted by the test (root; `ip` from iproute2).

use std::process::Command;

use super::nats::{free_port, NatsCluster, NatsServer};

impl NatsCluster {
    /// Starts three nodes, `n0` and `n1` here and `n2` inside `apart` (a
    /// network namespace joined to this one by a veth pair), so that
    /// [`Netns::cut`] partitions `n2` from its peers and from every client
    /// at once, silently (packets dropped, connections left open).
    pub fn start_with_one_apart(apart: &Netns) -> NatsCluster {
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let here = |i: usize| format!("nats-route://127.0.0.1:{}", ports[i]);
        let config = |i: usize, listen: String, routes: Vec<String>| {
            format!(
                "server_name: n{i}\ncluster {{\n  name: allot\n  listen: {listen}\n  routes: [{}]\n}}\n",
                routes.join(", ")
            )
        };
        let to_apart = format!("nats-route://{}:{}", apart.inside(), ports[2]);
        let mut nodes: Vec<NatsServer> = (0..2)
            .map(|i| {
                let routes = vec![here(1 - i), to_apart.clone()];
                // Every address, so `n2` reaches it over the veth pair.
                NatsServer::start_with_config(&config(i, format!("0.0.0.0:{}", ports[i]), routes))
            })
            .collect();
        let from_apart = (0..2)
            .map(|i| format!("nats-route://{}:{}", apart.outside(), ports[i]))
            .collect();
        let listen = format!("{}:{}", apart.inside(), ports[2]);
        nodes.push(NatsServer::start_in(apart, &config(2, listen, from_apart)));
        NatsCluster { nodes }
    }
}
/// A network namespace joined to this one by a veth pair (a /30: this side
/// `outside()`, the namespace `inside()`), deleted on drop. Needs root;
/// `ip netns` and veth work on the CI machine.
pub struct Netns {
    pub name: String,
    veth: String,
    outside: String,
    inside: String,
}

impl Netns {
    /// Creates it; an error (the failing `ip` command) where the machine does not
    /// allow network namespaces.
    pub fn create() -> Result<Netns, String> {
        let id = std::process::id();
        let name = format!("allot-{id}");
        let veth = format!("av{}", id % 1_000_000);
        // A /30 of 10.200.0.0/14 picked by pid, unlikely to clash.
        let net = format!("10.{}.{}", 200 + id % 4, (id / 4) % 64 * 4);
        let (outside, inside) = (format!("{net}.1"), format!("{net}.2"));
        let ns = Netns {
            name,
            veth,
            outside: outside.clone(),
            inside: inside.clone(),
        };
        let peer = format!("{}p", ns.veth);
        ip(&["netns", "add", &ns.name])?;
        ip(&[
            "link", "add", &ns.veth, "type", "veth", "peer", "name", &peer,
        ])?;
        ip(&["link", "set", &peer, "netns", &ns.name])?;
        ip(&["addr", "add", &format!("{outside}/30"), "dev", &ns.veth])?;
        ip(&["link", "set", &ns.veth, "up"])?;
        let inns = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &ns.name, "ip"];
            all.extend_from_slice(args);
            ip(&all)
        };
        inns(&["addr", "add", &format!("{inside}/30"), "dev", &peer])?;
        inns(&["link", "set", &peer, "up"])?;
        inns(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// This side's address.
    pub fn outside(&self) -> &str {
        &self.outside
    }

    /// The namespace's address.
    pub fn inside(&self) -> &str {
        &self.inside
    }

    /// Partitions the namespace: its link goes down, every packet in or
    /// out is dropped.
    pub fn cut(&self) {
        ip(&["link", "set", &self.veth, "down"]).expect("take the veth down");
    }

    /// Heals [`Netns::cut`].
    pub fn heal(&self) {
        ip(&["link", "set", &self.veth, "up"]).expect("bring the veth up");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.veth]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Runs `ip args`; its stderr on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
