// The official openai-node SDK against lci's Responses API: one response not streamed, one
// streamed with the SDK's helper. Prints one JSON object. Env: LCI_URL, LCI_KEY.
import OpenAI from "openai";

const client = new OpenAI({ baseURL: `${process.env.LCI_URL}/v1`, apiKey: process.env.LCI_KEY, maxRetries: 0 });
const tools = [{ type: "code_interpreter", container: { type: "auto" } }];

const plain = await client.responses.create({
  model: "node-plain",
  input: "What is 6 * 7? Use code.",
  tools,
  include: ["code_interpreter_call.outputs"],
});

const events = [];
const stream = client.responses.stream({ model: "node-stream", input: "Again, streamed.", tools });
for await (const event of stream) events.push(event.type);
const final = await stream.finalResponse();

// output_text is a convenience create() adds; a streamed final response is read from its items
const textOf = (response) => response.output
  .filter((item) => item.type === "message")
  .flatMap((item) => item.content)
  .filter((part) => part.type === "output_text")
  .map((part) => part.text)
  .join("");
const call = plain.output.find((item) => item.type === "code_interpreter_call");
console.log(JSON.stringify({
  status: plain.status,
  text: plain.output_text,
  code: call?.code,
  container: call?.container_id,
  logs: (call?.outputs ?? []).filter((o) => o.type === "logs").map((o) => o.logs),
  streamText: textOf(final),
  streamStatus: final.status,
  events,
}));
