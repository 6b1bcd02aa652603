//! Remote servers as the engine sees them: fjord's own SSH key, and a server's record turned
//! into the endpoint `host::remote` connects to.

use std::sync::Arc;

use host::remote::{Endpoint, Machines, RemoteReads, SshKeys};
use host::{LocalReads, Reads};
use model::Server;

use crate::{Fjord, Result};

impl Fjord {
    /// fjord's own SSH key pair and the known-hosts files it writes: in its data dir, root's.
    pub(crate) fn ssh_keys(&self) -> SshKeys {
        SshKeys::new(self.ssh_keys_dir())
    }

    /// Where fjord's SSH key pair and known-hosts files are.
    pub(crate) fn ssh_keys_dir(&self) -> std::path::PathBuf {
        self.data_dir().join("ssh")
    }

    /// This process's links to remote servers.
    pub(crate) fn machines(&self) -> &Machines {
        self.machines.get_or_init(|| Machines::new(self.ssh_keys()))
    }

    /// Reads of `server`'s machine: here, or through its link.
    pub(crate) fn reads_of(&self, server: &Server) -> Result<Arc<dyn Reads>> {
        Ok(match endpoint(server) {
            None => Arc::new(LocalReads),
            Some(endpoint) => Arc::new(RemoteReads::new(self.machines().link(&endpoint)?)),
        })
    }

    /// The public half of fjord's SSH key, made on first use.
    pub fn ssh_public_key(&self) -> Result<String> {
        Ok(self.ssh_keys().public_key()?)
    }
}

/// How fjord reaches `server`; None for the machine fjord runs on.
pub(crate) fn endpoint(server: &Server) -> Option<Endpoint> {
    let remote = server.remote.as_ref()?;
    Some(Endpoint {
        name: server.name.to_string(),
        user: remote.ssh.user.clone(),
        host: remote.ssh.host.clone(),
        port: remote.ssh.port,
        host_key: remote.host_key.to_string(),
        dir: remote.dir.as_path().to_path_buf(),
    })
}
