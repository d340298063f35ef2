const os = require('os');
const path = require('path');

exports.session = {
  type: 'file',
  common: {
    maxAge: 24 * 3600 * 1000, // 1 day
    cookie: { name: 'thinkjs' }
  },
  file: {
    handle: require('think-session-file'),
    sessionPath: process.env.SESSION_PATH || path.join(os.tmpdir(), 'thinkjs-sessions')
  }
};
