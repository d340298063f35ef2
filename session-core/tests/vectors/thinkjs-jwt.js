// The ThinkJS 3 interoperability vectors of the `jwt` session type, made by the Node
// libraries themselves. Run from this folder:
//
//   npm install --no-save think-session-jwt@1.1.1 jsonwebtoken@9
//   node thinkjs-jwt.js
//
// It rewrites thinkjs-jwt.json: tokens that think-session-jwt and jsonwebtoken issue (read
// by `session-core/src/client/jwt.rs`'s tests), and what think-session-jwt reads from the
// token this crate issues (`issued_here`, kept from the file: the Rust test fails with the
// new token if it ever changes; put it there and run this again).
const fs = require('fs');
const path = require('path');
const jwt = require('jsonwebtoken');
const JWTSession = require('think-session-jwt');

const FILE = path.join(__dirname, 'thinkjs-jwt.json');
const SECRET = 'interop secret of thirty-two bytes!';
const data = { userInfo: { name: 'Zoë', id: 7, roles: ['admin'] }, visits: 3 };
const options = (sign) => ({ secret: SECRET, tokenType: 'header', tokenName: 'authorization', sign });

async function issue(sign) {
  const session = new JWTSession(options(sign), { headers: {} });
  await session.set('userInfo', data.userInfo);
  return session.set('visits', data.visits);
}

async function read(token) {
  const session = new JWTSession(options({}), { headers: { authorization: token } });
  const read = await session.get();
  return read instanceof Error ? `${read.name}: ${read.message}` : JSON.stringify(read);
}

(async () => {
  const old = fs.existsSync(FILE) ? JSON.parse(fs.readFileSync(FILE, 'utf8')) : {};
  const out = {
    secret: SECRET,
    data,
    issued_by_thinkjs: await issue({ expiresIn: '36500d' }),
    issued_by_thinkjs_without_exp: await issue({}),
    expired: jwt.sign({ ...data, exp: 1000000000 }, SECRET, { noTimestamp: true }),
    hs384: jwt.sign(data, SECRET, { algorithm: 'HS384', expiresIn: '36500d' }),
    alg_none: jwt.sign(data, null, { algorithm: 'none', expiresIn: '36500d' }),
    other_secret: jwt.sign(data, 'another secret of thirty-two bytes', { expiresIn: '36500d' }),
    not_yet_valid: jwt.sign(data, SECRET, { expiresIn: '36500d', notBefore: '36000d' }),
    issued_here: old.issued_here || '',
    issued_here_read_by_thinkjs: old.issued_here ? await read(old.issued_here) : '{}',
  };
  fs.writeFileSync(FILE, JSON.stringify(out, null, 2) + '\n');
})();
