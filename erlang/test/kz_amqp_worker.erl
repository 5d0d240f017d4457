%%% Test stand-in for Kazoo's kz_amqp_worker (kazoo_apps), the request side
%%% our modules use: call/4 over a pool of workers. Each worker has its own
%%% exclusive queue bound to `targeted' with its name, as Kazoo's pool workers
%%% have. call/4 puts the worker's queue in `Server-ID' (the caller's own in
%%% `Server-Queue-ID'), adds a 16-hex `Msg-ID' when there is none, runs the
%%% publish fun in the worker, returns the first reply whose `Msg-ID' matches
%%% and that passes the validation fun (others are dropped: the wait goes
%%% on), `{returned, JObj, Return}' for a mandatory publish the broker returns,
%%% `{error, timeout}' after the timeout, `{error, pool_full}' when no worker
%%% is free and `{error, poolboy_fault}' when there is no pool.
%%% Left out: call_collect, cast, Defer-Response, federation. Never shipped.
-module(kz_amqp_worker).
-behaviour(gen_server).

-export([call/4, start_pool/2, stop_pool/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-include_lib("amqp_client/include/amqp_client.hrl").

-define(POOL, 'kz_amqp_worker_standin_pool').
-define(FUDGE, 2600).

%%% the pool -------------------------------------------------------------------

start_pool(AmqpUrl, Size) ->
    Caller = self(),
    Pid = spawn(fun() -> pool_init(Caller, AmqpUrl, Size) end),
    receive
        {Pid, 'started'} -> 'ok';
        {Pid, {'error', _} = E} -> E
    after 10000 -> {'error', 'pool_start_timeout'}
    end.

stop_pool() ->
    case whereis(?POOL) of
        'undefined' -> 'ok';
        Pid ->
            Ref = monitor('process', Pid),
            Pid ! 'stop',
            receive {'DOWN', Ref, _, _, _} -> 'ok' after 5000 -> 'ok' end
    end.

pool_init(Caller, AmqpUrl, Size) ->
    process_flag('trap_exit', 'true'),
    {'ok', Params} = amqp_uri:parse(AmqpUrl),
    case amqp_connection:start(Params) of
        {'ok', Conn} ->
            {'ok', Channel} = amqp_connection:open_channel(Conn),
            persistent_term:put({'kz_amqp_util', 'channel'}, Channel),
            Workers = [begin {'ok', W} = gen_server:start_link(?MODULE, [Conn], []), W end
                       || _ <- lists:seq(1, Size)
                      ],
            register(?POOL, self()),
            Caller ! {self(), 'started'},
            pool_loop(Conn, Workers);
        {'error', _} = E ->
            Caller ! {self(), E}
    end.

pool_loop(Conn, Free) ->
    receive
        {'checkout', From} ->
            case Free of
                [] -> From ! {?POOL, 'full'}, pool_loop(Conn, Free);
                [W | Rest] -> From ! {?POOL, W}, pool_loop(Conn, Rest)
            end;
        {'checkin', W} -> pool_loop(Conn, [W | Free]);
        'stop' ->
            unregister(?POOL),
            catch amqp_connection:close(Conn),
            'ok';
        {'EXIT', _, _} -> pool_loop(Conn, Free)
    end.

call(Req, PubFun, VFun, Timeout) ->
    case whereis(?POOL) of
        'undefined' -> {'error', 'poolboy_fault'};
        Pool ->
            Pool ! {'checkout', self()},
            receive
                {?POOL, 'full'} -> {'error', 'pool_full'};
                {?POOL, Worker} ->
                    Prop = case Req of
                               {_} -> kz_json:to_proplist(Req);
                               _ -> Req
                           end,
                    try gen_server:call(Worker, {'request', Prop, PubFun, VFun, Timeout}, Timeout + ?FUDGE)
                    catch
                        'exit':{'timeout', _} -> {'error', 'timeout'};
                        _:R -> {'error', R}
                    after
                        Pool ! {'checkin', Worker}
                    end
            after 2000 -> {'error', 'poolboy_fault'}
            end
    end.

%%% a worker -------------------------------------------------------------------

init([Conn]) ->
    {'ok', Channel} = amqp_connection:open_channel(Conn),
    Queue = iolist_to_binary([atom_to_list(node()), "-", pid_to_list(self()), "-"
                             ,kz_binary:rand_hex(4)
                             ]),
    #'exchange.declare_ok'{} =
        amqp_channel:call(Channel, #'exchange.declare'{exchange = <<"targeted">>, type = <<"direct">>}),
    #'queue.declare_ok'{} =
        amqp_channel:call(Channel, #'queue.declare'{queue = Queue, exclusive = 'true', auto_delete = 'true'}),
    #'queue.bind_ok'{} =
        amqp_channel:call(Channel, #'queue.bind'{queue = Queue, exchange = <<"targeted">>, routing_key = Queue}),
    #'basic.consume_ok'{} =
        amqp_channel:subscribe(Channel, #'basic.consume'{queue = Queue, no_ack = 'true'}, self()),
    'ok' = amqp_channel:register_return_handler(Channel, self()),
    kz_amqp_util:set_channel(Channel),
    {'ok', #{channel => Channel, queue => Queue, pending => 'undefined'}}.

handle_call({'request', Prop, PubFun, VFun, Timeout}, From, #{queue := Queue} = State) ->
    MsgId = case props:get_value(<<"Msg-ID">>, Prop) of
                'undefined' -> kz_binary:rand_hex(8);
                M -> M
            end,
    Caller = props:get_value(<<"Server-ID">>, Prop),
    P1 = props:set_value(<<"Msg-ID">>, MsgId, props:set_value(<<"Server-ID">>, Queue, Prop)),
    P2 = case Caller of
             'undefined' -> P1;
             _ -> props:set_value(<<"Server-Queue-ID">>, Caller, P1)
         end,
    try PubFun(P2) of
        'ok' ->
            TRef = erlang:send_after(Timeout, self(), {'request_timeout', MsgId}),
            {'noreply', State#{pending => {From, MsgId, VFun, TRef}}};
        Other -> {'reply', {'error', Other}, State}
    catch
        _:R -> {'reply', {'error', R}, State}
    end.

handle_cast(_, State) -> {'noreply', State}.

handle_info({#'basic.deliver'{}, #amqp_msg{payload = Payload}}, #{pending := {From, MsgId, VFun, TRef}} = State) ->
    JObj = kz_json:decode(Payload),
    case kz_json:get_value(<<"Msg-ID">>, JObj) =:= MsgId
        andalso (catch VFun(JObj)) =:= 'true'
    of
        'true' ->
            _ = erlang:cancel_timer(TRef),
            gen_server:reply(From, {'ok', JObj}),
            {'noreply', State#{pending => 'undefined'}};
        'false' -> {'noreply', State}
    end;
handle_info({#'basic.return'{reply_code = Code, reply_text = Text, exchange = X, routing_key = RK}
            ,#amqp_msg{payload = Payload}}
           ,#{pending := {From, MsgId, _VFun, TRef}} = State) ->
    JObj = kz_json:decode(Payload),
    case kz_json:get_value(<<"Msg-ID">>, JObj) =:= MsgId of
        'true' ->
            _ = erlang:cancel_timer(TRef),
            Return = kz_json:from_list([{<<"code">>, Code}, {<<"message">>, Text}
                                       ,{<<"exchange">>, X}, {<<"routing_key">>, RK}
                                       ]),
            gen_server:reply(From, {'returned', JObj, Return}),
            {'noreply', State#{pending => 'undefined'}};
        'false' -> {'noreply', State}
    end;
handle_info({'request_timeout', MsgId}, #{pending := {From, MsgId, _, _}} = State) ->
    gen_server:reply(From, {'error', 'timeout'}),
    {'noreply', State#{pending => 'undefined'}};
handle_info(_, State) -> {'noreply', State}.

terminate(_, _) -> 'ok'.
