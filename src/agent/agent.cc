#include "agent/agent.h"

#include <boost/asio.hpp>
#include <filesystem>
#include <future>

#include "base/log.h"

namespace gapless::agent {

namespace asio = boost::asio;

struct Agent::Running {
  asio::io_context io{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{
      asio::make_work_guard(io)};
  // Parallel vectors, touched only on the input thread once it runs.
  std::vector<config::InputConfig> configs;
  std::vector<std::unique_ptr<input::Input>> inputs;
};

StatusOr<std::unique_ptr<Agent>> Agent::Start(const config::AgentConfig& cfg,
                                              spool::RecoveryReport* report) {
  std::unique_ptr<Agent> a(new Agent());
  a->cfg_ = cfg;
  env::Env* env = env::Env::Posix();
  std::error_code ec;
  std::filesystem::create_directories(env::JoinPath(cfg.data_dir, "state"), ec);
  if (ec) return UnavailableError("cannot create data_dir " + cfg.data_dir + ": " + ec.message());
  ASSIGN_OR_RETURN(
      a->spool_, spool::Spool::Open(env, env::JoinPath(cfg.data_dir, "spool"), cfg.spool, report));
  a->ingest_ = std::make_unique<ingest::Ingest>(a->spool_.get(), cfg.commit_delay_ms * 1000);
  a->running_ = std::make_unique<Running>();
  for (const config::InputConfig& in : cfg.inputs) {
    if (Status s = a->StartInput(in); !s.ok()) {
      a->Stop();
      return s;
    }
  }
  a->input_thread_ = std::thread([r = a->running_.get()] { r->io.run(); });
  return a;
}

Agent::~Agent() { Stop(); }

Status Agent::StartInput(const config::InputConfig& in) {
  input::Context ctx{&running_->io, ingest_.get(), env::Env::Posix()->clock(),
                     env::JoinPath(cfg_.data_dir, "state")};
  std::unique_ptr<input::Input> input;
  switch (in.type) {
    case config::InputType::kSyslogTcp:
      input = input::NewSyslogTcpInput(ctx, in.syslog);
      break;
    case config::InputType::kSyslogUdp:
      input = input::NewSyslogUdpInput(ctx, in.syslog);
      break;
    case config::InputType::kRelp:
      input = input::NewRelpInput(ctx, in.syslog);
      break;
    case config::InputType::kHttp:
      input = input::NewHttpInput(ctx, in.http);
      break;
    case config::InputType::kFile:
      input = input::NewFileInput(ctx, in.file);
      break;
    case config::InputType::kJournald:
      input = input::NewJournaldInput(ctx, in.journald);
      break;
  }
  if (Status s = input->Start(); !s.ok()) {
    return Status(s.code(), "input at config line " + std::to_string(in.line) + ": " + s.message());
  }
  if (in.type != config::InputType::kFile && in.type != config::InputType::kJournald) {
    LogInfo("input " + input->name() + " listening on port " + std::to_string(input->port()));
  }
  running_->configs.push_back(in);
  running_->inputs.push_back(std::move(input));
  return Status::Ok();
}

void Agent::OnInputThread(const std::function<void()>& fn) const {
  std::promise<void> done;
  asio::post(running_->io, [&] {
    fn();
    done.set_value();
  });
  done.get_future().wait();
}

Status Agent::Reload(const config::AgentConfig& cfg) {
  std::string problems;
  if (cfg.data_dir != cfg_.data_dir || cfg.id != cfg_.id ||
      cfg.spool.quota_bytes != cfg_.spool.quota_bytes ||
      cfg.spool.segment_bytes != cfg_.spool.segment_bytes ||
      cfg.spool.full_policy != cfg_.spool.full_policy ||
      cfg.spool.max_record_bytes != cfg_.spool.max_record_bytes ||
      cfg.commit_delay_ms != cfg_.commit_delay_ms) {
    problems += "[agent] and [spool] changes take effect only after a restart; ";
  }
  OnInputThread([&] {
    // Stop what is gone or changed; keep what is identical.
    std::vector<bool> keep(cfg.inputs.size(), false);
    for (size_t i = 0; i < running_->configs.size();) {
      const auto same = std::find_if(cfg.inputs.begin(), cfg.inputs.end(), [&](const auto& c) {
        return c.type == running_->configs[i].type && c.syslog == running_->configs[i].syslog &&
               c.file == running_->configs[i].file;
      });
      if (same != cfg.inputs.end() && !keep[same - cfg.inputs.begin()]) {
        keep[same - cfg.inputs.begin()] = true;
        ++i;
        continue;
      }
      LogInfo("reload: stopping input " + running_->inputs[i]->name());
      running_->inputs[i]->Stop();
      running_->inputs.erase(running_->inputs.begin() + static_cast<ptrdiff_t>(i));
      running_->configs.erase(running_->configs.begin() + static_cast<ptrdiff_t>(i));
    }
    for (size_t i = 0; i < cfg.inputs.size(); ++i) {
      if (keep[i]) continue;
      if (Status s = StartInput(cfg.inputs[i]); !s.ok()) problems += s.message() + "; ";
    }
  });
  cfg_.inputs = cfg.inputs;
  if (problems.empty()) return Status::Ok();
  problems.resize(problems.size() - 2);
  return FailedPreconditionError("reload: " + problems);
}

void Agent::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (running_) {
    auto stop_inputs = [r = running_.get()] {
      for (auto& input : r->inputs) input->Stop();
    };
    if (input_thread_.joinable()) {
      OnInputThread(stop_inputs);
      running_->work.reset();
      running_->io.stop();
      input_thread_.join();
    } else {
      stop_inputs();
    }
    running_->inputs.clear();  // after the io_context stopped: no handler can run
  }
  if (ingest_) ingest_->Stop();
  if (spool_) {
    if (Status s = spool_->Close(); !s.ok()) LogError("closing the spool: " + s.ToString());
  }
}

std::vector<InputStatus> Agent::Inputs() const {
  std::vector<InputStatus> out;
  if (!running_ || stopped_) return out;
  OnInputThread([&] {
    for (const auto& input : running_->inputs) {
      out.push_back(InputStatus{input->name(), input->port(), input->stats()});
    }
  });
  return out;
}

}  // namespace gapless::agent
