// GET /incr: adds 1 to the session's counter and answers the new value.
module.exports = class extends think.Controller {
  async indexAction() {
    const n = ((await this.session('counter')) || 0) + 1;
    await this.session('counter', n);
    this.ctx.type = 'text/plain';
    this.body = String(n);
  }
};
