// PGlite in-process (the testkit's starter) unless DATABASE_URL points at a real PostgreSQL.
export async function startDatabase() {
  if (process.env.DATABASE_URL) {
    return { connectionString: process.env.DATABASE_URL, close: async () => {} };
  }
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const db = await PGlite.create();
  const server = new PGLiteSocketServer({ db, port: 0, host: '127.0.0.1', maxConnections: 50 });
  await server.start();
  const { port } = server.server.address();
  return {
    connectionString: `postgres://postgres@127.0.0.1:${port}/postgres`,
    close: async () => {
      await server.stop();
      await db.close();
    },
  };
}
