//! CLUSTER: Lodestone runs as a standalone server, so every CLUSTER
//! subcommand answers as Redis does with `cluster-enabled no`. The rows
//! exist so that the command table (COMMAND, scripts' noscript checks, ACL
//! categories) matches Redis's.

use super::{Ctx, Registry};

/// Rows of the CLUSTER container and its subcommands (Redis 7.2).
pub const TABLE: &str = "\
cluster|cluster|-2|3.0.0|-|-|-|A container for Redis Cluster commands.
cluster|addslots|cluster|-3|3.0.0|no_async_loading,admin,stale|-|-|Assigns new hash slots to a node.
cluster|addslotsrange|cluster|-4|7.0.0|no_async_loading,admin,stale|-|-|Assigns new hash slot ranges to a node.
cluster|bumpepoch|cluster|2|3.0.0|no_async_loading,admin,stale|-|-|Advances the cluster config epoch.
cluster|count-failure-reports|cluster|3|3.0.0|admin,stale|-|-|Returns the number of active failure reports active for a node.
cluster|countkeysinslot|cluster|3|3.0.0|stale|-|-|Returns the number of keys in a hash slot.
cluster|delslots|cluster|-3|3.0.0|no_async_loading,admin,stale|-|-|Sets hash slots as unbound for a node.
cluster|delslotsrange|cluster|-4|7.0.0|no_async_loading,admin,stale|-|-|Sets hash slot ranges as unbound for a node.
cluster|failover|cluster|-2|3.0.0|no_async_loading,admin,stale|-|-|Forces a replica to perform a manual failover of its master.
cluster|flushslots|cluster|2|3.0.0|no_async_loading,admin,stale|-|-|Deletes all slots information from a node.
cluster|forget|cluster|3|3.0.0|no_async_loading,admin,stale|-|-|Removes a node from the nodes table.
cluster|getkeysinslot|cluster|4|3.0.0|stale|-|-|Returns the key names in a hash slot.
cluster|help|cluster|2|5.0.0|loading,stale|-|-|Returns helpful text about the different subcommands.
cluster|info|cluster|2|3.0.0|stale|-|-|Returns information about the state of a node.
cluster|keyslot|cluster|3|3.0.0|stale|-|-|Returns the hash slot for a key.
cluster|links|cluster|2|7.0.0|stale|-|-|Returns a list of all TCP links to and from peer nodes.
cluster|meet|cluster|-4|3.0.0|no_async_loading,admin,stale|-|-|Forces a node to handshake with another node.
cluster|myid|cluster|2|3.0.0|stale|-|-|Returns the ID of a node.
cluster|myshardid|cluster|2|7.2.0|stale|-|-|Returns the shard ID of a node.
cluster|nodes|cluster|2|3.0.0|stale|-|-|Returns the cluster configuration for a node.
cluster|replicas|cluster|3|5.0.0|admin,stale|-|-|Lists the replica nodes of a master node.
cluster|replicate|cluster|3|3.0.0|no_async_loading,admin,stale|-|-|Configure a node as replica of a master node.
cluster|reset|cluster|-2|3.0.0|admin,stale,noscript|-|-|Resets a node.
cluster|saveconfig|cluster|2|3.0.0|no_async_loading,admin,stale|-|-|Forces a node to save the cluster configuration to disk.
cluster|set-config-epoch|cluster|3|3.0.0|no_async_loading,admin,stale|-|-|Sets the configuration epoch for a new node.
cluster|setslot|cluster|-4|3.0.0|no_async_loading,admin,stale|-|-|Binds a hash slot to a node.
cluster|shards|cluster|2|7.0.0|loading,stale|-|-|Returns the mapping of cluster slots to shards.
cluster|slaves|cluster|3|3.0.0|admin,stale|-|-|Lists the replica nodes of a master node.
cluster|slots|cluster|2|3.0.0|loading,stale|-|-|Returns the mapping of cluster slots to nodes.
asking|cluster|1|3.0.0|fast|connection|-|Signals that a cluster client is following an -ASK redirect.
readonly|cluster|1|3.0.0|fast,loading,stale|connection|-|Enables read-only queries for a connection to a Redis Cluster replica node.
readwrite|cluster|1|3.0.0|fast,loading,stale|connection|-|Enables read-write queries for a connection to a Reids Cluster replica node.
";

/// Registers the CLUSTER rows and handlers.
pub fn register(r: &mut Registry) {
    r.tables.push(TABLE);
    r.handlers.extend_from_slice(&[
        ("cluster|addslots", disabled),
        ("cluster|addslotsrange", disabled),
        ("cluster|bumpepoch", disabled),
        ("cluster|count-failure-reports", disabled),
        ("cluster|countkeysinslot", disabled),
        ("cluster|delslots", disabled),
        ("cluster|delslotsrange", disabled),
        ("cluster|failover", disabled),
        ("cluster|flushslots", disabled),
        ("cluster|forget", disabled),
        ("cluster|getkeysinslot", disabled),
        ("cluster|help", disabled),
        ("cluster|info", disabled),
        ("cluster|keyslot", disabled),
        ("cluster|links", disabled),
        ("cluster|meet", disabled),
        ("cluster|myid", disabled),
        ("cluster|myshardid", disabled),
        ("cluster|nodes", disabled),
        ("cluster|replicas", disabled),
        ("cluster|replicate", disabled),
        ("cluster|reset", disabled),
        ("cluster|saveconfig", disabled),
        ("cluster|set-config-epoch", disabled),
        ("cluster|setslot", disabled),
        ("cluster|shards", disabled),
        ("cluster|slaves", disabled),
        ("cluster|slots", disabled),
        ("asking", disabled),
        ("readonly", disabled),
        ("readwrite", disabled),
    ]);
}

/// Redis's reply to any CLUSTER subcommand (and ASKING, READONLY,
/// READWRITE) outside cluster mode.
fn disabled(ctx: &mut Ctx, _argv: &[&[u8]]) {
    ctx.error("ERR This instance has cluster support disabled");
}
