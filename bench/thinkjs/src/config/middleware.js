// Only what GET /incr needs.
module.exports = ['router', 'controller'];
