//! Two network namespaces of a test's own joined by a veth pair, so that two `dockerd`s on
//! one machine are two Swarm nodes with addresses of their own (each a manager's or a
//! worker's ports, 2377 and 7946, without meeting the other's). Removed, with the pair, when
//! dropped. Needs root.

use std::process::Command;

use super::private_engine::run_quietly;

pub struct NodePair {
    /// The namespaces' names (`ip netns`), also the two ends' interface names.
    pub names: [String; 2],
    /// Each end's IPv4 address.
    pub addresses: [String; 2],
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip (iproute2): {e}"));
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl NodePair {
    pub fn new() -> NodePair {
        // Short names (an interface's is at most 15 bytes), unique per test process.
        let pid = std::process::id();
        let names = [format!("lk{pid}m"), format!("lk{pid}w")];
        let net = pid % 250;
        let addresses = [format!("10.233.{net}.1"), format!("10.233.{net}.2")];
        let pair = NodePair { names, addresses };
        let [a, b] = &pair.names;
        ip(&["netns", "add", a]);
        ip(&["netns", "add", b]);
        ip(&["link", "add", a, "type", "veth", "peer", "name", b]);
        for (name, address) in pair.names.iter().zip(&pair.addresses) {
            ip(&["link", "set", name, "netns", name]);
            let within = |args: &[&str]| {
                let mut all = vec!["netns", "exec", name.as_str()];
                all.extend_from_slice(args);
                ip(&all);
            };
            within(&["ip", "addr", "add", &format!("{address}/24"), "dev", name]);
            within(&["ip", "link", "set", name, "up"]);
            within(&["ip", "link", "set", "lo", "up"]);
        }
        pair
    }

    /// The words that start a program in namespace `i` with `hostname` as its host's name
    /// (only the network and host name differ: `ip netns exec` would also hide the cgroups a
    /// `dockerd` needs).
    pub fn launcher(&self, i: usize, hostname: &str) -> Vec<String> {
        let script = format!("hostname {hostname} && exec \"$@\"");
        [
            "nsenter",
            &format!("--net=/run/netns/{}", self.names[i]),
            "unshare",
            "--uts",
            "sh",
            "-c",
            &script,
            "sh",
        ]
        .map(str::to_owned)
        .to_vec()
    }
}

impl Drop for NodePair {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the pair, and so the pair.
        for name in &self.names {
            if !run_quietly("ip", &["netns", "del", name], 10) {
                eprintln!("[node pair] cannot delete the network namespace {name}");
            }
        }
    }
}
