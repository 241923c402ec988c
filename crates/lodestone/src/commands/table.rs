//! The command metadata: one row per command and subcommand, in the shape
//! of Redis 7.2's command table (name, group, arity, since, flags, explicit
//! ACL categories, key positions, summary).
//!
//! This text is the single source that COMMAND, ACL categories, key
//! extraction for locking and (later) cluster routing read. A command is
//! served only if a family registers a handler for its name, and a unit
//! test checks that every row has a handler and every handler a row.
//!
//! Columns, separated by `|`: name, group, arity, since, flags (comma
//! separated, `-` for none), explicit ACL categories, key positions
//! `first,last,step` (`-` for none), summary.

pub const TABLE: &str = "\
get|string|2|1.0.0|readonly,fast|string|1,1,1|Returns the string value of a key.
set|string|-3|1.0.0|write,denyoom|string|1,1,1|Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.
setnx|string|3|1.0.0|write,denyoom,fast|string|1,1,1|Set the string value of a key only when the key doesn't exist.
setex|string|4|2.0.0|write,denyoom|string|1,1,1|Sets the string value and expiration time of a key. Creates the key if it doesn't exist.
psetex|string|4|2.6.0|write,denyoom|string|1,1,1|Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.
mget|string|-2|1.0.0|readonly,fast|string|1,-1,1|Atomically returns the string values of one or more keys.
mset|string|-3|1.0.1|write,denyoom|string|1,-1,2|Atomically creates or modifies the string values of one or more keys.
msetnx|string|-3|1.0.1|write,denyoom|string|1,-1,2|Atomically modifies the string values of one or more keys only when all keys don't exist.
getset|string|3|1.0.0|write,denyoom,fast|string|1,1,1|Returns the previous string value of a key after setting it to a new value.
getdel|string|2|6.2.0|write,fast|string|1,1,1|Returns the string value of a key after deleting the key.
getex|string|-2|6.2.0|write,fast|string|1,1,1|Returns the string value of a key after setting its expiration time.
append|string|3|2.0.0|write,denyoom,fast|string|1,1,1|Appends a string to the value of a key. Creates the key if it doesn't exist.
strlen|string|2|2.2.0|readonly,fast|string|1,1,1|Returns the length of a string value.
incr|string|2|1.0.0|write,denyoom,fast|string|1,1,1|Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.
decr|string|2|1.0.0|write,denyoom,fast|string|1,1,1|Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.
incrby|string|3|1.0.0|write,denyoom,fast|string|1,1,1|Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.
decrby|string|3|1.0.0|write,denyoom,fast|string|1,1,1|Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.
incrbyfloat|string|3|2.6.0|write,denyoom,fast|string|1,1,1|Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.
getrange|string|4|2.4.0|readonly|string|1,1,1|Returns a substring of the string stored at a key.
substr|string|4|1.0.0|readonly|string|1,1,1|Returns a substring from a string value.
setrange|string|4|2.2.0|write,denyoom|string|1,1,1|Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.
lcs|string|-3|7.0.0|readonly|string|1,2,1|Finds the longest common substring.
del|generic|-2|1.0.0|write|keyspace|1,-1,1|Deletes one or more keys.
unlink|generic|-2|4.0.0|write,fast|keyspace|1,-1,1|Asynchronously deletes one or more keys.
exists|generic|-2|1.0.0|readonly,fast|keyspace|1,-1,1|Determines whether one or more keys exist.
type|generic|2|1.0.0|readonly,fast|keyspace|1,1,1|Determines the type of value stored at a key.
rename|generic|3|1.0.0|write|keyspace|1,2,1|Renames a key and overwrites the destination.
renamenx|generic|3|1.0.0|write,fast|keyspace|1,2,1|Renames a key only when the target key name doesn't exist.
copy|generic|-3|6.2.0|write,denyoom|keyspace|1,2,1|Copies the value of a key to a new key.
move|generic|3|1.0.0|write,fast|keyspace|1,1,1|Moves a key to another database.
expire|generic|-3|1.0.0|write,fast|keyspace|1,1,1|Sets the expiration time of a key in seconds.
pexpire|generic|-3|2.6.0|write,fast|keyspace|1,1,1|Sets the expiration time of a key in milliseconds.
expireat|generic|-3|1.2.0|write,fast|keyspace|1,1,1|Sets the expiration time of a key to a Unix timestamp.
pexpireat|generic|-3|2.6.0|write,fast|keyspace|1,1,1|Sets the expiration time of a key to a Unix milliseconds timestamp.
ttl|generic|2|1.0.0|readonly,fast|keyspace|1,1,1|Returns the expiration time in seconds of a key.
pttl|generic|2|2.6.0|readonly,fast|keyspace|1,1,1|Returns the expiration time in milliseconds of a key.
expiretime|generic|2|7.0.0|readonly,fast|keyspace|1,1,1|Returns the expiration time of a key as a Unix timestamp.
pexpiretime|generic|2|7.0.0|readonly,fast|keyspace|1,1,1|Returns the expiration time of a key as a Unix milliseconds timestamp.
persist|generic|2|2.2.0|write,fast|keyspace|1,1,1|Removes the expiration time of a key.
keys|generic|2|1.0.0|readonly|keyspace,dangerous|-|Returns all key names that match a pattern.
scan|generic|-2|2.8.0|readonly,touches_arbitrary_keys|keyspace|-|Iterates over the key names in the database.
randomkey|generic|1|1.0.0|readonly,touches_arbitrary_keys|keyspace|-|Returns a random key name from the database.
touch|generic|-2|3.2.1|readonly,fast|keyspace|1,-1,1|Returns the number of existing keys out of those specified after updating the time they were last accessed.
object|generic|-2|2.2.3|-|-|-|A container for object introspection commands.
object|encoding|generic|3|2.2.3|readonly|keyspace|2,2,1|Returns the internal encoding of a Redis object.
object|freq|generic|3|4.0.0|readonly|keyspace|2,2,1|Returns the logarithmic access frequency counter of a Redis object.
object|help|generic|2|6.2.0|loading,stale|keyspace|-|Returns helpful text about the different subcommands.
object|idletime|generic|3|2.2.3|readonly|keyspace|2,2,1|Returns the time since the last access to a Redis object.
object|refcount|generic|3|2.2.3|readonly|keyspace|2,2,1|Returns the reference count of a value of a key.
dbsize|server|1|1.0.0|readonly,fast|keyspace|-|Returns the number of keys in the database.
flushdb|server|-1|1.0.0|write|keyspace,dangerous|-|Remove all keys from the current database.
flushall|server|-1|1.0.0|write|keyspace,dangerous|-|Removes all keys from all databases.
swapdb|server|3|4.0.0|write,fast|keyspace,dangerous|-|Swaps two Redis databases.
select|connection|2|1.0.0|loading,stale,fast|connection|-|Changes the selected database.
ping|connection|-1|1.0.0|fast,sentinel|connection|-|Returns the server's liveliness response.
echo|connection|2|1.0.0|loading,stale,fast|connection|-|Returns the given string.
quit|connection|-1|1.0.0|allow_busy,noscript,loading,stale,fast,no_auth|connection|-|Closes the connection.
reset|connection|1|6.2.0|noscript,loading,stale,fast,no_auth,allow_busy|connection|-|Resets the connection.
auth|connection|-2|1.0.0|noscript,loading,stale,fast,no_auth,sentinel,allow_busy|connection|-|Authenticates the connection.
hello|connection|-1|6.0.0|noscript,loading,stale,fast,no_auth,sentinel,allow_busy|connection|-|Handshakes with the Redis server.
client|connection|-2|2.4.0|sentinel|-|-|A container for client connection commands.
client|caching|connection|3|6.0.0|noscript,loading,stale,sentinel|connection|-|Instructs the server whether to track the keys in the next request.
client|getname|connection|2|2.6.9|noscript,loading,stale,sentinel|connection|-|Returns the name of the connection.
client|getredir|connection|2|6.0.0|noscript,loading,stale,sentinel|connection|-|Returns the client ID to which the connection's tracking notifications are redirected.
client|help|connection|2|5.0.0|loading,stale,sentinel|connection|-|Returns helpful text about the different subcommands.
client|id|connection|2|5.0.0|noscript,loading,stale,sentinel|connection|-|Returns the unique client ID of the connection.
client|info|connection|2|6.2.0|noscript,loading,stale,sentinel|connection|-|Returns information about the connection.
client|kill|connection|-3|2.4.0|admin,noscript,loading,stale,sentinel|connection|-|Terminates open connections.
client|list|connection|-2|2.4.0|admin,noscript,loading,stale,sentinel|connection|-|Lists open connections.
client|no-evict|connection|3|7.0.0|admin,noscript,loading,stale,sentinel|connection|-|Sets the client eviction mode of the connection.
client|no-touch|connection|3|7.2.0|noscript,loading,stale|connection|-|Controls whether commands sent by the client affect the LRU/LFU of accessed keys.
client|pause|connection|-3|3.0.0|admin,noscript,loading,stale,sentinel|connection|-|Suspends commands processing.
client|reply|connection|3|3.2.0|noscript,loading,stale,sentinel|connection|-|Instructs the server whether to reply to commands.
client|setinfo|connection|4|7.2.0|noscript,loading,stale,sentinel|connection|-|Sets information specific to the client or connection.
client|setname|connection|3|2.6.9|noscript,loading,stale,sentinel|connection|-|Sets the connection name.
client|tracking|connection|-3|6.0.0|noscript,loading,stale,sentinel|connection|-|Controls server-assisted client-side caching for the connection.
client|trackinginfo|connection|2|6.2.0|noscript,loading,stale,sentinel|connection|-|Returns information about server-assisted client-side caching for the connection.
client|unblock|connection|-3|5.0.0|admin,noscript,loading,stale,sentinel|connection|-|Unblocks a client blocked by a blocking command from a different connection.
client|unpause|connection|2|6.2.0|admin,noscript,loading,stale,sentinel|connection|-|Resumes processing commands from paused clients.
info|server|-1|1.0.0|loading,stale,sentinel|dangerous|-|Returns information and statistics about the server.
config|server|-2|2.0.0|-|-|-|A container for server configuration commands.
config|get|server|-3|2.0.0|admin,noscript,loading,stale|-|-|Returns the effective values of configuration parameters.
config|help|server|2|5.0.0|loading,stale|-|-|Returns helpful text about the different subcommands.
config|resetstat|server|2|2.0.0|admin,noscript,loading,stale|-|-|Resets the server's statistics.
config|rewrite|server|2|2.8.0|admin,noscript,loading,stale|-|-|Persists the effective configuration to file.
config|set|server|-4|2.0.0|admin,noscript,loading,stale|-|-|Sets configuration parameters in-flight.
command|server|-1|2.8.13|loading,stale,sentinel|connection|-|Returns detailed information about all commands.
command|count|server|2|2.8.13|loading,stale,sentinel|connection|-|Returns a count of commands.
command|docs|server|-2|7.0.0|loading,stale,sentinel|connection|-|Returns documentary information about one, multiple or all commands.
command|getkeys|server|-3|2.8.13|loading,stale,sentinel|connection|-|Extracts the key names from an arbitrary command.
command|getkeysandflags|server|-3|7.0.0|loading,stale,sentinel|connection|-|Extracts the key names and access flags for an arbitrary command.
command|help|server|2|5.0.0|loading,stale,sentinel|connection|-|Returns helpful text about the different subcommands.
command|info|server|-2|2.8.13|loading,stale,sentinel|connection|-|Returns information about one, multiple or all commands.
command|list|server|-2|7.0.0|loading,stale,sentinel|connection|-|Returns a list of command names.
time|server|1|2.6.0|loading,stale,fast|-|-|Returns the server time.
lastsave|server|1|1.0.0|loading,stale,fast|admin,dangerous|-|Returns the Unix timestamp of the last successful save to disk.
bgrewriteaof|server|1|1.0.0|no_async_loading,admin,noscript|-|-|Asynchronously rewrites the append-only file to disk.
debug|server|-2|1.0.0|admin,noscript,loading,stale,protected|-|-|A container for debugging commands.
shutdown|server|-1|1.0.0|admin,noscript,loading,stale,no_multi,sentinel,allow_busy|-|-|Synchronously saves the database(s) to disk and shuts down the Redis server.
slowlog|server|-2|2.2.12|-|-|-|A container for slow log commands.
slowlog|get|server|-2|2.2.12|admin,loading,stale|-|-|Returns the slow log's entries.
slowlog|help|server|2|6.2.0|loading,stale|-|-|Show helpful text about the different subcommands.
slowlog|len|server|2|2.2.12|admin,loading,stale|-|-|Returns the number of entries in the slow log.
slowlog|reset|server|2|2.2.12|admin,loading,stale|-|-|Clears all entries from the slow log.
memory|server|-2|4.0.0|-|-|-|A container for memory diagnostics commands.
memory|doctor|server|2|4.0.0|-|-|-|Outputs a memory problems report.
memory|help|server|2|4.0.0|loading,stale|-|-|Returns helpful text about the different subcommands.
memory|malloc-stats|server|2|4.0.0|-|-|-|Returns the allocator statistics.
memory|purge|server|2|4.0.0|-|-|-|Asks the allocator to release memory.
memory|stats|server|2|4.0.0|-|-|-|Returns details about memory usage.
memory|usage|server|-3|4.0.0|readonly|-|2,2,1|Estimates the memory usage of a key.
module|server|-2|4.0.0|-|-|-|A container for module commands.
module|help|server|2|5.0.0|loading,stale|-|-|Returns helpful text about the different subcommands.
module|list|server|2|4.0.0|admin,noscript|-|-|Returns all loaded modules.
module|load|server|-3|4.0.0|no_async_loading,admin,noscript,protected|-|-|Loads a module.
module|loadex|server|-3|7.0.0|no_async_loading,admin,noscript,protected|-|-|Loads a module using extended parameters.
module|unload|server|3|4.0.0|no_async_loading,admin,noscript,protected|-|-|Unloads a module.
monitor|server|1|1.0.0|admin,noscript,loading,stale|-|-|Listens for all requests received by the server in real-time.
lolwut|server|-1|5.0.0|readonly,fast|-|-|Displays computer art and the Redis version
multi|transactions|1|1.2.0|noscript,loading,stale,fast,allow_busy|transaction|-|Starts a transaction.
exec|transactions|1|1.2.0|noscript,loading,stale,skip_slowlog|transaction|-|Executes all commands in a transaction.
discard|transactions|1|2.0.0|noscript,loading,stale,fast,allow_busy|transaction|-|Discards a transaction.
watch|transactions|-2|2.2.0|noscript,loading,stale,fast,allow_busy|transaction|1,-1,1|Monitors changes to keys to determine the execution of a transaction.
unwatch|transactions|1|2.2.0|noscript,loading,stale,fast,allow_busy|transaction|-|Forgets about watched keys of a transaction.
";
