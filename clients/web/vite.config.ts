import { defineConfig } from "vite";

// `npm run dev` serves the client with hot reload and forwards the API and Socket.IO to a running server
// (`make run`, or CHAT_SERVER=http://host:port).
const server = process.env.CHAT_SERVER ?? "http://127.0.0.1:8000";

export default defineConfig({
  build: { outDir: "dist", emptyOutDir: true, sourcemap: true, target: "es2022" },
  server: {
    port: 5173,
    proxy: {
      "/api": { target: server, changeOrigin: false },
      "/socket.io": { target: server, ws: true, changeOrigin: false },
    },
  },
});
