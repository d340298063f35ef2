module.exports = {
  port: Number(process.env.PORT || 8361),
  workers: Number(process.env.WORKERS || 2)
};
