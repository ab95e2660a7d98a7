'use strict'
// @mplogin/client: the mini-program side of mplogin. See README.md.
module.exports = require('./lib/client.js')
