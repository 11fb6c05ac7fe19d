// The messages service's MongoDB user: readWrite on its own database only (messages, receipts, GridFS).
// The mongo image runs this once, when the data volume is empty, as the root user; the password comes from the
// container's environment (MESSAGES_DB_PASSWORD, set from deploy/compose/.env).
const password = process.env.MESSAGES_DB_PASSWORD;
if (!password) {
  throw new Error("MESSAGES_DB_PASSWORD is not set");
}
db.getSiblingDB("chat_messages").createUser({
  user: "chat_messages",
  pwd: password,
  roles: [{ role: "readWrite", db: "chat_messages" }],
});
