module.exports = [require('think-session')];
