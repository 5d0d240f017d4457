// A CouchDB-API server for kz-endpoint's tests: PouchDB Server's HTTP layer (express-pouchdb)
// over in-memory databases. Listens on 127.0.0.1, on the port given as the first argument
// (0: a free one), and prints "listening <port>" once it accepts connections.
//
// Two known behaviours of the stock `pouchdb-server` command are avoided here: it strips "/"
// from database names (Kazoo's account databases contain "/"), and it gzips responses, which
// stalls `_changes` feeds. This launcher keeps names as given and adds no compression.
'use strict';

const express = require('express');
const PouchDB = require('pouchdb-core')
  .plugin(require('pouchdb-adapter-memory'))
  .plugin(require('pouchdb-mapreduce'))
  .plugin(require('pouchdb-replication'));

// express-pouchdb passes every database name through a file-name sanitiser that removes "/".
// The databases live in memory, so names are kept exactly as CouchDB keeps them.
const cleanFilename = require.resolve('express-pouchdb/lib/clean-filename');
require.cache[cleanFilename] = {
  id: cleanFilename, filename: cleanFilename, loaded: true, exports: (name) => name,
};

const MemPouch = PouchDB.defaults({ adapter: 'memory' });

// The list of databases. express-pouchdb would keep it in a database of its own
// (pouchdb-all-dbs), whose updates conflict when databases are created concurrently, so that a
// database can drop off the list and then answer 404. Tests create databases in parallel;
// this keeps the list in memory, from PouchDB's own created/destroyed events.
const known = new Set();
for (const ctor of [PouchDB, MemPouch]) {
  ctor.on('created', (name) => known.add(name));
  ctor.on('destroyed', (name) => known.delete(name));
}
MemPouch.allDbs = (callback) => {
  const list = Array.from(known).sort();
  if (callback) {
    callback(null, list);
    return undefined;
  }
  return Promise.resolve(list);
};
const app = express();
app.use('/', require('express-pouchdb')(MemPouch, {
  mode: 'minimumForPouchDB',
  inMemoryConfig: true,
}));

const port = Number(process.argv[2] || 0);
const server = app.listen(port, '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => server.close(() => process.exit(0)));
}
